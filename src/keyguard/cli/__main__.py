from keyguard.cli.main import main

main()
