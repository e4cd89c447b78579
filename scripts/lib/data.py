"""Prints a Webchat database as MongoDB stores it: every collection with its validator, its indexes
and its documents, as readable JSON (MongoDB's relaxed Extended JSON, the format of mongoexport and
mongosh's EJSON: `{"$oid": ...}`, `{"$date": "2026-...Z"}`). Values are printed as stored: a
password hash is the argon2id PHC string in the document, nothing is hidden or decoded.

Run it through scripts/data, which finds the native stack's database and uses the project venv's
pymongo (scripts/requirements.txt).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import pymongo
from bson import json_util
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError

JSON = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=True)
# A wrapper with one scalar, such as {"$oid": "..."} or {"$date": "..."}, spread over three lines.
_SPREAD_WRAPPER = re.compile(r'\{\n\s*("\$\w+": [^{}\[\]\n]+)\n\s*\}')


def to_json(value, indent: int | None = 2) -> str:
    """Indented JSON with `{"$oid": ...}` and `{"$date": ...}` kept on one line."""
    text = json_util.dumps(value, json_options=JSON, indent=indent, ensure_ascii=False)
    return _SPREAD_WRAPPER.sub(r"{\1}", text)


def redacted(uri: str) -> str:
    """The URI without its password, for messages."""
    return re.sub(r"(?<=://)([^:/@]+):[^@/]*@", r"\1:***@", uri)


def collection_names(database, wanted: list[str]) -> list[str]:
    present = sorted(name for name in database.list_collection_names() if not name.startswith("system."))
    missing = [name for name in wanted if name not in present]
    if missing:
        raise LookupError(f"no collection {', '.join(missing)} in {database.name} (it has: {', '.join(present) or 'none'})")
    return wanted or present


def describe(database, names: list[str], limit: int) -> list[dict]:
    """One entry per collection: name, options (validator and its level/action), indexes, documents."""
    infos = {info["name"]: info for info in database.list_collections()}
    described = []
    for name in names:
        collection = database[name]
        options = infos.get(name, {}).get("options", {})
        cursor = collection.find().sort("_id", 1)
        if limit:
            cursor = cursor.limit(limit)
        described.append(
            {
                "collection": name,
                "count": collection.count_documents({}),
                "validator": options.get("validator"),
                "validationLevel": options.get("validationLevel"),
                "validationAction": options.get("validationAction"),
                "indexes": list(collection.list_indexes()),
                "documents": list(cursor),
            }
        )
    return described


def as_text(database_name: str, described: list[dict]) -> str:
    out = []
    for entry in described:
        shown = len(entry["documents"])
        count = f"{entry['count']} document{'s' if entry['count'] != 1 else ''}"
        if shown < entry["count"]:
            count += f", the first {shown} shown"
        out.append(f"=== {database_name}.{entry['collection']} ({count})")
        if entry["validator"] is None:
            out.append("validator: none (the server reports none for this collection)")
        else:
            out.append(
                f"validator (validationLevel {entry['validationLevel'] or 'strict'}, "
                f"validationAction {entry['validationAction'] or 'error'}):"
            )
            out.append(to_json(entry["validator"]))
        out.append("indexes:")
        out.extend(to_json(index, indent=None) for index in entry["indexes"])
        out.append("documents:")
        out.extend(to_json(document) for document in entry["documents"])
        out.append("")
    if not described:
        out.append(f"the database {database_name} has no collections")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/data",
        description="Prints each collection of the Webchat database with its validator, indexes and documents.",
    )
    parser.add_argument("collections", nargs="*", metavar="COLLECTION", help="only these (default: every collection)")
    parser.add_argument("--uri", default=os.environ.get("MONGODB_URI"), help="MongoDB URI (default: $MONGODB_URI, else the native stack's)")
    parser.add_argument("--db", default=os.environ.get("MONGODB_DB") or "webchat", help="database (default: $MONGODB_DB or webchat)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many documents per collection (default: all)")
    parser.add_argument("--json", action="store_true", help="one JSON document for the whole database instead of text")
    parser.add_argument("--timeout", type=float, default=5, help="seconds to wait for the server (default: 5)")
    args = parser.parse_args(argv)
    if not args.uri:
        parser.error("no database to read: start the native stack (scripts/stack up), or set MONGODB_URI or --uri")

    try:
        with pymongo.MongoClient(args.uri, serverSelectionTimeoutMS=int(args.timeout * 1000), appname="scripts/data") as client:
            database = client[args.db]
            described = describe(database, collection_names(database, args.collections), args.limit)
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ServerSelectionTimeoutError as error:
        reason = str(error).split(" (configured timeouts")[0]
        print(
            f"error: no MongoDB answers at {redacted(args.uri)} ({reason}); is it running? "
            "For the native stack: scripts/stack status",
            file=sys.stderr,
        )
        return 1
    except PyMongoError as error:
        print(f"error: cannot read {args.db} at {redacted(args.uri)}: {error}", file=sys.stderr)
        return 1
    try:
        print(to_json({"database": args.db, "collections": described}) if args.json else as_text(args.db, described))
        sys.stdout.flush()
    except BrokenPipeError:  # `scripts/data | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
