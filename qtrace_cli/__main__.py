from qtrace_cli.cli import main

main()
