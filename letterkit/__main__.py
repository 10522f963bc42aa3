from letterkit.cli import console

console()
