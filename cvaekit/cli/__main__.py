from cvaekit.cli import app

app(prog_name="cvaekit")
