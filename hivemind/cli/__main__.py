from hivemind.cli import console

console()
