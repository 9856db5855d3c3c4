"""``python -m mmlatch`` runs the command line (same as the ``mmlatch`` script)."""

from mmlatch.cli.main import app

if __name__ == "__main__":
    app(prog_name="mmlatch")
