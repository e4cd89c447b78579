"""The database chapter's tables, generated from the files the code itself uses.

`db/schema.json` holds the collections' JSON-schema validators and indexes (the website and the
db init script create them from it). The app user and its role come from the init script in `db/`.
Russian descriptions of the fields live in `docs/db-fields.tsv`; the schema's own (English)
description is used for a field that has none there, so a new field never goes missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

BSON_TYPES = {
    "objectId": "ObjectId",
    "string": "String",
    "date": "Date",
    "int": "Int32",
    "long": "Int64",
    "bool": "Boolean",
    "object": "Object",
    "array": "Array",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    # Inline code that may itself contain backticks or pipes (regular expressions do).
    ticks = "``" if "`" in text else "`"
    return f"{ticks}{text}{ticks}".replace("|", "\\|")


def load_descriptions(path: Path) -> dict[str, str]:
    descriptions = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, text = line.partition("\t")
        descriptions[key.strip()] = text.strip()
    return descriptions


def _constraints(spec: dict, unique: bool) -> str:
    parts = []
    if unique:
        parts.append("уникальное (индекс)")
    if "pattern" in spec:
        parts.append("шаблон " + _code(spec["pattern"]))
    if "minLength" in spec:
        parts.append(f"длина ≥ {spec['minLength']}")
    if "maxLength" in spec:
        parts.append(f"длина ≤ {spec['maxLength']}")
    if "enum" in spec:
        parts.append("одно из " + ", ".join(_code(json.dumps(v, ensure_ascii=False)) for v in spec["enum"]))
    return "; ".join(parts) or "—"


def _index_kind(index: dict) -> str:
    kinds = []
    if any(v == "text" for v in index["key"].values()):
        kinds.append("текстовый")
        if "default_language" in index:
            kinds.append(f"язык `{index['default_language']}` (без стемминга и стоп-слов)")
    else:
        kinds.append("B-дерево")
    if index.get("unique"):
        kinds.append("уникальный")
    if "expireAfterSeconds" in index:
        seconds = index["expireAfterSeconds"]
        when = "в момент, указанный в поле" if seconds == 0 else f"через {seconds} с после значения поля"
        kinds.append(f"TTL: документ удаляется {when}")
    return ", ".join(kinds)


def _key(index: dict) -> str:
    return "{ " + ", ".join(f"{field}: {json.dumps(order)}" for field, order in index["key"].items()) + " }"


def collections_markdown(schema_path: Path, descriptions: dict[str, str]) -> str:
    """Per collection: a table of its fields and a table of its indexes."""
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    out = []
    for name, collection in schema["collections"].items():
        validator = collection["validator"]["$jsonSchema"]
        required = set(validator.get("required", []))
        unique_fields = {
            field
            for index in collection.get("indexes", [])
            if index.get("unique")
            for field in index["key"]
            if len(index["key"]) == 1
        }
        title = descriptions.get(name) or validator.get("title", "")
        out.append(f"### Коллекция `{name}`\n")
        if title:
            out.append(f"{title}.\n")
        out.append(f"Table: Поля коллекции `{name}` {{#tbl:fields-{name}}}\n")
        out.append("| Поле | Тип BSON | Обяз. | Ограничения | Описание |")
        out.append(
            "|:-------------------|:-----------|:--------:|:--------------------------|:-------------------------------|"
        )
        for field, spec in validator["properties"].items():
            key = f"{name}.{field}"
            text = descriptions.get(key)
            if text is None:
                text = spec.get("description", "")
                print(
                    f"note: no Russian description of {key} in docs/db-fields.tsv; using the schema's", file=sys.stderr
                )
            bson = spec.get("bsonType", "")
            bson = (
                " или ".join(BSON_TYPES.get(t, t) for t in bson)
                if isinstance(bson, list)
                else BSON_TYPES.get(bson, bson)
            )
            out.append(
                f"| `{field}` | {bson} | {'да' if field in required else 'нет'} | "
                f"{_constraints(spec, field in unique_fields)} | {_cell(text)} |"
            )
        out.append("")
        if validator.get("additionalProperties") is False:
            out.append("Валидатор запрещает поля, не перечисленные в таблице (`additionalProperties: false`).\n")
        indexes = collection.get("indexes", [])
        if indexes:
            out.append(f"Table: Индексы коллекции `{name}` {{#tbl:indexes-{name}}}\n")
            out.append("| Индекс | Ключ | Вид |")
            out.append("|:----------------|:------------------------------|:------------------------------|")
            out.append("| `_id_` | `{ _id: 1 }` | B-дерево, уникальный (создаётся MongoDB) |")
            for index in indexes:
                out.append(f"| `{index['name']}` | `{_key(index)}` | {_index_kind(index)} |")
            out.append("")
    return "\n".join(out)


def _user_snippet(text: str) -> str:
    """The lines that define the user's roles and create it: from the first line that mentions
    `roles` (or the `createUser` line) to the end of the top-level block around `createUser`."""
    lines = text.splitlines()
    create = next(i for i, line in enumerate(lines) if "createUser" in line)
    start = next(
        (
            i
            for i, line in enumerate(lines[: create + 1])
            if re.search(r"\broles\b", line) and not line.lstrip().startswith("//")
        ),
        create,
    )
    end = next((i for i in range(create, len(lines)) if lines[i].rstrip() == "}"), create)
    return "\n".join(lines[start : end + 1])


def init_script(db_dir: Path) -> Path | None:
    """The script in `db/` that creates the application's user, if there is one yet."""
    for path in sorted(db_dir.rglob("*")):
        if (
            path.is_file()
            and path.suffix in (".js", ".sh", ".py", ".mjs")
            and "createUser" in path.read_text(encoding="utf-8", errors="replace")
        ):
            return path
    return None


def app_user_markdown(root: Path) -> str:
    """The app user's creation, quoted from the init script, and its roles in a table."""
    script = init_script(root / "db")
    if script is None:
        print(
            "warning: no script in db/ calls createUser yet; the report describes the app user from the design",
            file=sys.stderr,
        )
        return (
            "Сервис website подключается к базе под отдельным пользователем приложения с ролью "
            "`readWrite` только на базе `webchat`; учётная запись администратора используется лишь "
            "при первичной инициализации.\n"
        )
    text = script.read_text(encoding="utf-8")
    snippet = _user_snippet(text)
    database_name = json.loads((root / "db/schema.json").read_text(encoding="utf-8"))["database"]
    roles = re.findall(r"""role\s*:\s*["'](\w+)["']\s*,\s*db\s*:\s*([^\s},]+)""", text)
    rel = script.relative_to(root).as_posix()
    lines = [
        f"Пользователь приложения создаётся скриптом инициализации `{rel}` при первом запуске "
        "контейнера базы данных (от имени администратора, учётные данные которого передаются "
        "через переменные окружения):\n"
    ]
    lang = "javascript" if script.suffix in (".js", ".mjs") else "bash" if script.suffix == ".sh" else "python"
    lines.append(f"```{lang}\n{snippet}\n```\n")
    if roles:
        lines.append("Table: Права пользователя приложения {#tbl:app-user}\n")
        lines.append("| Роль | База данных | Что разрешает |")
        lines.append("|:------------|:------------|:----------------------------------------|")
        meaning = {
            "readWrite": "чтение и запись документов, создание индексов и коллекций",
            "read": "только чтение",
            "dbOwner": "полное управление базой",
        }
        for role, db in roles:
            db = db.strip("\"'`")
            if db == "schema.database":  # the init script reads the name from db/schema.json
                db = database_name
            lines.append(f"| `{role}` | `{db}` | {meaning.get(role, '—')} |")
        lines.append("")
    return "\n".join(lines)


RECORDER = "tests/system/static/mongosh_recorder.js"
LINE_WIDTH = 92


def _compact(value, indent: int = 0) -> str:
    """JSON as mongosh prints it to a reader: a value that fits on its line stays on one line,
    a larger object or array opens one line per member."""
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if len(flat) + indent <= LINE_WIDTH or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        members = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_compact(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(members) + "\n" + " " * indent + "}"
    members = [f"{pad}{_compact(v, indent + 2)}" for v in value]
    return "[\n" + ",\n".join(members) + "\n" + " " * indent + "]"


def _schema_commands(schema: dict) -> list[dict]:
    """The commands db/init/webchat.js sends on an empty database, built from schema.json the way
    the script builds them (tests/system/static/test_db_init.py holds the script to this)."""
    commands = []
    for name, spec in schema["collections"].items():
        commands.append(
            {"create": name, "validator": spec["validator"], "validationLevel": "strict", "validationAction": "error"}
        )
        commands.append({"createIndexes": name, "indexes": spec["indexes"]})
    return commands


def init_commands(root: Path) -> tuple[list[dict], str]:
    """The commands the init script sends to an empty MongoDB for the collections, and how they
    were obtained: by running the script itself under node with a recording `db` (no server
    needed), or, without node, built from schema.json the same way."""
    schema = json.loads((root / "db/schema.json").read_text(encoding="utf-8"))
    script = init_script(root / "db")
    recorder = root / RECORDER
    if script is not None and recorder.is_file() and shutil.which("node"):
        environment = {
            **os.environ,
            "WEBCHAT_SCHEMA": str(root / "db/schema.json"),
            "MONGO_APP_USERNAME": "webchat",
            "MONGO_APP_PASSWORD": "not-shown",
        }
        result = subprocess.run(
            ["node", str(recorder), str(script), "", ""], capture_output=True, text=True, env=environment
        )
        if result.returncode == 0:
            recorded = [entry["command"] for entry in json.loads(result.stdout)]
            commands = [c for c in recorded if "create" in c or "createIndexes" in c]
            return commands, "recorded"
        print(f"note: could not run {script} under node ({result.stderr.strip()}); using schema.json", file=sys.stderr)
    return _schema_commands(schema), "schema"


def init_commands_markdown(root: Path) -> str:
    commands, how = init_commands(root)
    script = init_script(root / "db")
    rel = script.relative_to(root).as_posix() if script else "db/init"
    if how == "recorded":
        origin = (
            f"Эти команды записаны при сборке отчёта: скрипт `{rel}` выполняется так же, как его "
            "выполняет mongosh в контейнере базы данных, но вместо сервера команды принимает "
            "записывающий объект `db`, поэтому здесь они приведены ровно в том виде, в каком уходят "
            "в MongoDB."
        )
    else:
        origin = f"Эти команды построены из `db/schema.json` так же, как их строит скрипт `{rel}`."
    lines = [origin + "\n"]
    body = []
    for command in commands:
        body.append(f"db.runCommand({_compact(command)})")
    lines.append("```javascript\n" + "\n\n".join(body) + "\n```\n")
    return "\n".join(lines)
