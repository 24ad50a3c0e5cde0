from wxcli.cli import main

main()
