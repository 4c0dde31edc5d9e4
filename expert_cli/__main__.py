from expert_cli.cli import main

main()
