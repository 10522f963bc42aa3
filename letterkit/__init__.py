"""letterkit: letter-writing campaigns in defence of prisoners' rights.

The command line is a thin layer over this library; organisers can script
the same operations::

    import letterkit

    campaign = letterkit.load_campaign()              # or load_campaign("my-campaign/")
    signer = letterkit.Signer(name="A. Person", email="a@example.org", city="Leeds")
    for letter in letterkit.compose(campaign, "protest", signer, note="..."):
        print(letter.contact.id, letter.subject)

Names are imported lazily, so ``import letterkit`` stays cheap.
"""

from __future__ import annotations

TYPE_CHECKING = False  # avoids importing typing at start-up (the CLI's --version is instant)

__version__ = "0.1.0"

_EXPORTS = {
    # campaign and contacts
    "Campaign": "campaign",
    "TemplateFile": "campaign",
    "load_campaign": "campaign",
    "find_campaign_dir": "campaign",
    "bundled_campaign_dir": "campaign",
    "Contact": "contacts",
    "select": "contacts",
    "filter_contacts": "contacts",
    "CHANNELS": "contacts",
    # signer, accounts, paths
    "Signer": "config",
    "Account": "config",
    "Config": "config",
    "load_config": "config",
    "save_config": "config",
    "config_dir": "config",
    "data_dir": "config",
    # composing
    "Letter": "letters",
    "Renderer": "letters",
    "compose": "letters",
    "compose_all": "letters",
    "plan": "letters",
    "message_bytes": "message",
    "to_message": "message",
    "Cosigner": "cosigners",
    "load_cosigners": "cosigners",
    # queue, deliver, ledger
    "Outbox": "outbox",
    "Ledger": "ledger",
    "Row": "ledger",
    "deliver": "delivery",
    "send_letters": "service",
    "SendJob": "service",
    "flush": "service",
    "SendReport": "delivery",
    "DeliveryReport": "delivery",
    "SmtpTransport": "transport",
    "DeliveryResult": "transport",
    "get_password": "credentials",
    "store_password": "credentials",
    # export
    "export_letters": "export",
    "render_pdf": "export",
    "prepare_by_hand": "export",
    # authoring
    "check_campaign": "checker",
    "init_campaign": "campaign",
    "CheckReport": "checker",
    # errors
    "LetterkitError": "errors",
    "ConfigError": "errors",
    "CampaignError": "errors",
    "TemplateError": "errors",
    "ContactError": "errors",
    "InvalidValue": "errors",
    "CredentialError": "errors",
    "TransportError": "errors",
    "OutboxError": "errors",
    "ExportError": "errors",
    "NotConfirmed": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> object:
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'letterkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly (explicitly re-exported)
    from .campaign import (
        Campaign as Campaign,
        TemplateFile as TemplateFile,
        bundled_campaign_dir as bundled_campaign_dir,
        find_campaign_dir as find_campaign_dir,
        init_campaign as init_campaign,
        load_campaign as load_campaign,
    )
    from .checker import (
        CheckReport as CheckReport,
        check_campaign as check_campaign,
    )
    from .config import (
        Account as Account,
        Config as Config,
        Signer as Signer,
        config_dir as config_dir,
        data_dir as data_dir,
        load_config as load_config,
        save_config as save_config,
    )
    from .contacts import (
        CHANNELS as CHANNELS,
        Contact as Contact,
        filter_contacts as filter_contacts,
        select as select,
    )
    from .cosigners import (
        Cosigner as Cosigner,
        load_cosigners as load_cosigners,
    )
    from .credentials import (
        get_password as get_password,
        store_password as store_password,
    )
    from .delivery import (
        DeliveryReport as DeliveryReport,
        SendReport as SendReport,
        deliver as deliver,
    )
    from .errors import (
        CampaignError as CampaignError,
        ConfigError as ConfigError,
        ContactError as ContactError,
        CredentialError as CredentialError,
        ExportError as ExportError,
        InvalidValue as InvalidValue,
        LetterkitError as LetterkitError,
        NotConfirmed as NotConfirmed,
        OutboxError as OutboxError,
        TemplateError as TemplateError,
        TransportError as TransportError,
    )
    from .export import (
        export_letters as export_letters,
        prepare_by_hand as prepare_by_hand,
        render_pdf as render_pdf,
    )
    from .ledger import (
        Ledger as Ledger,
        Row as Row,
    )
    from .letters import (
        Letter as Letter,
        Renderer as Renderer,
        compose as compose,
        compose_all as compose_all,
        plan as plan,
    )
    from .message import (
        message_bytes as message_bytes,
        to_message as to_message,
    )
    from .outbox import (
        Outbox as Outbox,
    )
    from .service import (
        SendJob as SendJob,
        flush as flush,
        send_letters as send_letters,
    )
    from .transport import (
        DeliveryResult as DeliveryResult,
        SmtpTransport as SmtpTransport,
    )
