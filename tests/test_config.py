"""config.toml and contacts.toml are the user's files: letterkit changes what it must, keeps the rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from letterkit.config import load_config
from letterkit.errors import ConfigError
from letterkit.fileutil import atomic_write

HAND_WRITTEN = """\
# My letterkit setup, written by hand.
# Keep the office account first.

[signer]  # who signs
name = "A. Person"  # as on my passport
city = "Leeds"

# The office relay
[account.work]
host = "smtp.work.internal"   # ask IT before changing
port = 587
security = "starttls"
username = "me@work.internal"
from = "me@work.internal"

# home, used rarely
[account.home]
host = "smtp.home.internal"
port = 465
security = "tls"
username = "me@home.internal"
from = "me@home.internal"

# defaults come last
[defaults]
account = "work"   # most letters go from work
rate = "30/min"    # my provider's limit
"""


def config_file(isolated: Path) -> Path:
    path = isolated / "config" / "letterkit" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def comments(text: str) -> list[str]:
    """Every comment, in order, as written."""
    return [line[line.index("#") :] for line in text.splitlines() if "#" in line]


def order(text: str) -> list[str]:
    """Table headers and keys, in order."""
    return [line.split("=")[0].split("#")[0].strip() for line in text.splitlines() if line[:1] not in "# "]


def test_signer_set_keeps_comments_order_and_values_written_by_hand(invoke, isolated):
    path = config_file(isolated)
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    path.chmod(0o600)
    result = invoke("signer", "set", "--city", "York", "--country", "UK")
    assert result.exit_code == 0, result.output
    text = path.read_text(encoding="utf-8")
    assert comments(text) == comments(HAND_WRITTEN)
    assert 'city = "York"\ncountry = "UK"\n\n# The office relay\n[account.work]' in text
    assert order(text) == [*order(HAND_WRITTEN)[:3], "country", *order(HAND_WRITTEN)[3:]]
    assert 'rate = "30/min"    # my provider\'s limit' in text  # not rewritten as 30.0
    assert load_config(path).rate == 30
    assert path.stat().st_mode & 0o777 == 0o600


def test_account_add_and_remove_keep_comments_and_order(invoke, isolated):
    path = config_file(isolated)
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    added = invoke("account", "add", "relay", "--host", "127.0.0.1", "--port", "2525", "--security", "none",
                   "--from", "me@home.internal", "--no-login")  # fmt: skip
    assert added.exit_code == 0, added.output
    text = path.read_text(encoding="utf-8")
    assert comments(text) == comments(HAND_WRITTEN)
    # the new table goes after the last account; "# defaults come last" stays above [defaults]
    assert order(text)[: order(text).index("[account.relay]")] == order(HAND_WRITTEN)[:-3]
    assert text.endswith(
        'from = "me@home.internal"\n\n# defaults come last\n[defaults]\n'
        'account = "work"   # most letters go from work\nrate = "30/min"    # my provider\'s limit\n'
    )
    assert '\n\n[account.relay]\nhost = "127.0.0.1"\nport = 2525\n' in text

    removed = invoke("account", "remove", "home")
    assert removed.exit_code == 0, removed.output
    text = path.read_text(encoding="utf-8")
    assert "[account.home]" not in text and "# home, used rarely" not in text  # its own comment goes
    assert comments(text) == [c for c in comments(HAND_WRITTEN) if c != "# home, used rarely"]
    removed = invoke("account", "remove", "work")
    assert removed.exit_code == 0, removed.output
    text = path.read_text(encoding="utf-8")
    assert 'account = "work"' not in text and 'rate = "30/min"    # my provider\'s limit' in text
    assert text.startswith(HAND_WRITTEN[: HAND_WRITTEN.index("# The office relay")])
    assert load_config(path).accounts.keys() == {"relay"}


def test_a_new_config_file_is_private_and_says_no_password_is_kept(invoke, isolated):
    assert invoke("signer", "set", "--name", "A. Person").exit_code == 0
    path = config_file(isolated)
    assert path.read_text(encoding="utf-8").startswith("# letterkit configuration. No password")
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_config_made_readable_by_its_owner_stays_so(invoke, isolated):
    path = config_file(isolated)
    path.write_text('[signer]\nname = "A. Person"\n', encoding="utf-8")
    path.chmod(0o640)
    assert invoke("signer", "set", "--city", "Leeds").exit_code == 0
    assert path.stat().st_mode & 0o777 == 0o640


def test_contacts_add_and_remove_keep_the_users_comments(invoke, isolated):
    path = isolated / "config" / "letterkit" / "contacts.toml"
    path.parent.mkdir(parents=True)
    original = """\
# My own contacts, checked by hand.

# The mission I write to most
[[contact]]
id = "mission-xx"   # verified by phone
name = "Mission of Exampleland"
email = "mission@example.org"

# end of my list
"""
    path.write_text(original, encoding="utf-8")
    added = invoke("contacts", "add", "--id", "embassy-yy", "--name", "Embassy Y", "--email", "y@example.org")
    assert added.exit_code == 0, added.output
    text = path.read_text(encoding="utf-8")
    assert text.startswith(original[: original.index("\n# end")])
    assert comments(text) == comments(original)
    assert text.index('id = "embassy-yy"') < text.index("# end of my list")
    assert invoke("contacts", "remove", "embassy-yy").exit_code == 0
    assert comments(path.read_text(encoding="utf-8")) == comments(original)


def test_atomic_write_never_follows_a_planted_symlink(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    target = shared / "letter.txt"
    # every name the old code would have used for its temporary file, and a few neighbours
    for pid in range(os.getpid() - 2, os.getpid() + 3):
        (shared / f".{target.name}.{pid}.tmp").symlink_to(victim)
    atomic_write(target, b"new letter", mode=0o644)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert target.read_bytes() == b"new letter" and not target.is_symlink()
    assert target.stat().st_mode & 0o777 == 0o644
    leftovers = {p.name for p in shared.iterdir()} - {target.name}
    assert all(name.endswith(".tmp") and (shared / name).is_symlink() for name in leftovers)


def test_atomic_write_keeps_the_mode_and_replaces_a_symlink_rather_than_writing_through_it(tmp_path):
    target = tmp_path / "config.toml"
    target.write_bytes(b"old")
    target.chmod(0o600)
    atomic_write(target, b"new", mode=0o644)
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o600
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"keep")
    link = tmp_path / "link.toml"
    link.symlink_to(elsewhere)
    atomic_write(link, b"new")
    assert elsewhere.read_bytes() == b"keep" and not link.is_symlink() and link.read_bytes() == b"new"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_a_folder_that_cannot_be_written_is_one_line():
    with pytest.raises(ConfigError, match=r"^cannot write /proc/self/letter\.txt: ") as err:
        atomic_write(Path("/proc/self/letter.txt"), b"x")
    assert "\n" not in str(err.value)


def test_a_broken_config_is_named_when_letterkit_would_write_it(invoke, isolated):
    path = config_file(isolated)
    path.write_text("[signer\nname = 'x'\n", encoding="utf-8")
    result = invoke("signer", "set", "--name", "A. Person")
    assert result.exit_code == 2 and "config.toml" in result.stderr and "Traceback" not in result.output
    assert path.read_text(encoding="utf-8") == "[signer\nname = 'x'\n"


def test_defaults_rate_as_text_is_the_default_for_send(invoke, isolated, tmp_path):
    path = config_file(isolated)
    path.write_text('[defaults]\nrate = "30/min"\n', encoding="utf-8")
    assert load_config(path).rate == 30
    path.write_text('[defaults]\nrate = "thirty"\n', encoding="utf-8")
    bad = invoke("signer", "set", "--name", "A. Person")
    assert bad.exit_code == 2 and f"{path}:2 [defaults]: rate = 'thirty' is not a rate" in bad.stderr
