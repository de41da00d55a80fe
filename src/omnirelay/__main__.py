from omnirelay.cli import main

main()
