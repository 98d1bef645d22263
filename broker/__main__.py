"""``python -m broker``: the same as ``fastlog broker``."""

from broker.cli import main

if __name__ == "__main__":
    main(["broker", *__import__("sys").argv[1:]])
