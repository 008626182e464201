from giftgen.cli import main

main()
