"""Unit tests of the report generator's pieces (docs/tools/reportgen); standard library only.

PYTHONPATH=docs/tools python3 -m unittest tests/report/test_reportgen.py
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs/tools"))

from reportgen import appendices, captures, database, document, placeholders, postprocess, screenshots, seqdiag, variables  # noqa: E402

_spec = importlib.util.spec_from_file_location("placeholder_pictures", ROOT / "tests/report/placeholders.py")
placeholder_pictures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(placeholder_pictures)


class Numbering(unittest.TestCase):
    def test_sections_figures_and_tables_are_numbered_and_references_resolved(self):
        text, headings = document.number(
            "# Введение {.unnumbered}\n\n"
            "# Архитектура {#sec:arch}\n\n## Компоненты\n\nСм. @fig:topo и @tbl:env, раздел @sec:arch.\n\n"
            "![Топология](t.png){#fig:topo width=10cm}\n\n"
            "Table: Переменные {#tbl:env}\n\n"
            "# База данных\n"
        )
        self.assertIn("См. 1 и 1, раздел 1.", text)
        self.assertIn("![Рисунок 1 — Топология](t.png){width=10cm}", text)
        self.assertIn("Table: Таблица 1 — Переменные", text)
        self.assertEqual([h.text for h in headings], ["Введение", "1 Архитектура", "1.1 Компоненты", "2 База данных"])
        self.assertEqual(headings[2].bookmark, "sec_1_1")

    def test_code_blocks_are_left_alone(self):
        text, headings = document.number("```rust\n# not a heading\nlet x = @fig:nothing;\n```\n")
        self.assertIn("# not a heading", text)
        self.assertIn("@fig:nothing", text)
        self.assertEqual(headings, [])

    def test_a_reference_to_a_missing_label_is_an_error(self):
        with self.assertRaisesRegex(document.NumberingError, "fig:missing"):
            document.number("Как на рисунке @fig:missing.\n")

    def test_a_label_used_twice_is_an_error(self):
        with self.assertRaisesRegex(document.NumberingError, "twice"):
            document.number("![a](a.png){#fig:x}\n\n![b](b.png){#fig:x}\n")

    def test_contents_list_levels_one_and_two_except_notoc(self):
        _, headings = document.number("# A\n\n## B\n\n### C\n\n## D {.unnumbered .notoc}\n")
        toc = document.toc_openxml(headings)
        self.assertIn("PAGEREF sec_1 ", toc)
        self.assertIn("PAGEREF sec_1_1 ", toc)
        self.assertNotIn("1.1.1 C", toc)
        self.assertNotIn(">D<", toc)


class SequenceDiagrams(unittest.TestCase):
    SOURCE = (
        'participant a "Браузер"\nparticipant b "nginx"\n# comment\na -> b : GET /\nnote b : проверка\nb --> a : 200\n'
    )

    def test_a_diagram_parses_into_participants_and_steps(self):
        diagram = seqdiag.parse(self.SOURCE)
        self.assertEqual(diagram.participants, [("a", "Браузер"), ("b", "nginx")])
        self.assertEqual([step[0] for step in diagram.steps], ["msg", "note", "msg"])
        self.assertTrue(diagram.steps[2][3], "--> is an answer")

    def test_the_graphviz_source_places_every_message(self):
        dot = seqdiag.to_dot(seqdiag.parse(self.SOURCE))
        self.assertIn('label="GET /"', dot)
        self.assertIn("style=dashed];", dot)
        self.assertIn('label="проверка"', dot)

    def test_an_unknown_participant_names_the_line(self):
        with self.assertRaisesRegex(seqdiag.SeqError, r"x\.seq:2: unknown participant 'c'"):
            seqdiag.parse('participant a "A"\na -> c : hi\n', "x.seq")

    def test_long_labels_wrap_at_spaces(self):
        self.assertEqual(seqdiag.wrap("one two three four", 9), ["one two", "three", "four"])


class Variables(unittest.TestCase):
    def test_the_environment_overrides_the_defaults_and_names_the_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            env_file = Path(tmp) / "report.env"
            env_file.write_text('# c\nREPORT_SURNAME=Фамилия\nREPORT_NAME="Имя"\nREPORT_YEAR=\n', encoding="utf-8")
            values = variables.load(env_file, {"REPORT_SURNAME": "Петрова-Водкина", "OTHER": "x"})
        self.assertEqual(values["REPORT_SURNAME"], "Петрова-Водкина")
        self.assertEqual(values["REPORT_NAME"], "Имя")
        self.assertRegex(values["REPORT_YEAR"], r"^\d{4}$")
        self.assertNotIn("OTHER", values)
        self.assertEqual(variables.output_stem(values), "Петрова-Водкина_Имя_webdev_lab_1")

    def test_unsafe_characters_do_not_reach_the_file_name(self):
        stem = variables.output_stem({"REPORT_SURNAME": "a/b c", "REPORT_NAME": 'd:"e'})
        self.assertEqual(stem, "a_b_c_d_e_webdev_lab_1")

    def test_an_unknown_variable_in_a_chapter_is_an_error(self):
        with self.assertRaisesRegex(variables.VariablesError, "REPORT_NOPE"):
            variables.substitute("{{REPORT_NOPE}}", {}, "x.md")


class Appendices(unittest.TestCase):
    def test_a_trailing_unit_test_module_is_left_out(self):
        code = "fn a() {}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() { assert!(true); }\n}\n"
        text, lines = appendices.split_unit_tests("x.rs", code)
        self.assertEqual(text, "fn a() {}")
        self.assertEqual(lines, 5)

    def test_code_after_the_test_module_keeps_the_file_whole(self):
        code = "#[cfg(test)]\nmod tests {\n}\n\nfn after() {}\n"
        self.assertEqual(appendices.split_unit_tests("x.rs", code), (code, 0))

    def test_the_list_gives_each_file_a_caption_and_may_name_items(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            code = (
                "//! The module.\n//! Two lines.\n\nuse x;\n\n/// Says hi.\n#[inline]\npub fn hi() -> &'static str {\n"
                '    "{"\n}\n\nfn other() {}\n\nimpl Drop for X {\n    fn drop(&mut self) {}\n}\n'
            )
            (root / "src").mkdir()
            (root / "src/main.rs").write_text(code)
            (root / "src/a.rs").write_text("fn a() {}\n")
            listing = root / "list.txt"
            listing.write_text(
                "== Код\nsrc/a.rs — файл а\nsrc/main.rs — главный файл\n    @ //!\n    @ pub fn hi(\n"
                "    @ impl Drop for X\n== Архив\n@archive\nsrc/ — код\n",
                encoding="utf-8",
            )
            loaded = appendices.load(listing, root)
            self.assertEqual([(a.letter, a.files) for a in loaded], [("А", ["src/a.rs", "src/main.rs"]), ("Б", [])])
            self.assertEqual(loaded[0].entries[0].caption, "файл а")
            self.assertTrue(loaded[1].archive)
            self.assertEqual(loaded[1].folders, {"src/": "код"})
            shown = appendices.excerpt(root, loaded[0].entries[1])
            self.assertEqual(
                shown.text,
                "//! The module.\n//! Two lines.\n// …\n/// Says hi.\n#[inline]\npub fn hi() -> &'static str {\n"
                '    "{"\n}\n// …\nimpl Drop for X {\n    fn drop(&mut self) {}\n}',
            )
            for piece in appendices.fragments(root, loaded[0].entries[1]):
                self.assertIn(piece, code)

    def test_a_missing_file_item_or_caption_stops_the_build(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "a.rs").write_text("fn a() {}\n")
            listing = root / "list.txt"
            for text, error in (
                ("== Код\ngone.rs — нет такого\n", "gone.rs"),
                ("== Код\na.rs\n", "one line saying what it is"),
                ("== Код\na.rs — файл\n    @ fn b(\n", "fn b"),
                ("== Код\n*.rs — все\n", "pattern"),
            ):
                listing.write_text(text, encoding="utf-8")
                with self.assertRaisesRegex(appendices.AppendixError, error):
                    appendices.load(listing, root)

    def test_the_repositorys_list_loads(self):
        loaded = appendices.load(ROOT / "docs/appendices.txt", ROOT)
        self.assertTrue(any(a.archive for a in loaded))
        self.assertTrue(all(entry.caption for a in loaded for entry in a.entries))


class Screenshots(unittest.TestCase):
    def picture(self, folder: Path, name: str, width: int, height: int) -> Path:
        path = folder / name
        path.write_bytes(placeholder_pictures._png(width, height, [b"\xff" * 3 * width] * height, mark=False))
        return path

    def test_every_picture_is_printed_at_one_scale_two_to_a_page_or_alone_when_tall(self):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            desktop = screenshots.display_width_cm(self.picture(folder, "a.png", 1366, 768))
            self.assertEqual(desktop, screenshots.MAX_WIDTH_CM)
            self.assertLessEqual(desktop * 768 / 1366, screenshots.HALF_PAGE_CM, "two fit on a page")
            phone = screenshots.display_width_cm(self.picture(folder, "b.png", 390, 844))
            self.assertAlmostEqual(phone / 390, desktop / 1366, delta=0.001 + 0.2 / 390)
            a_bit_taller = screenshots.display_width_cm(self.picture(folder, "c.png", 1366, 1000))
            self.assertAlmostEqual(a_bit_taller * 1000 / 1366, screenshots.HALF_PAGE_CM, places=1)
            very_tall = screenshots.display_width_cm(self.picture(folder, "d.png", 1366, 4000))
            self.assertLessEqual(very_tall * 4000 / 1366, screenshots.FULL_PAGE_CM + 0.01)

    def test_a_screenshot_neither_shown_nor_left_out_is_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            listing = folder / "list.tsv"
            listing.write_text("group\tfile\tcaption\nЧат\ta.png\tПодпись\n-\tb.png\tтот же вид, что a\n", encoding="utf-8")
            for name in ("a.png", "b.png", "c.png"):
                self.picture(folder, name, 2, 2)
            self.assertEqual([s.file for s in screenshots.load(listing)], ["a.png"])
            self.assertEqual([s.file for s in screenshots.left_out(listing)], ["b.png"])
            self.assertEqual(screenshots.unlisted(listing, folder), ["c.png"])

    def test_the_repositorys_list_captions_name_a_requirement(self):
        for shot in screenshots.load(ROOT / "docs/screenshots.tsv"):
            self.assertRegex(shot.caption, r"\((сценарий|website|chat), пп?\. ", shot.file)


class TableCode(unittest.TestCase):
    def test_code_in_table_cells_gets_its_monospace_font_directly(self):
        xml = '<w:tbl><w:p><w:r><w:rPr><w:rStyle w:val="VerbatimChar" /></w:rPr><w:t>email</w:t></w:r></w:p></w:tbl>'
        out = postprocess._tables(xml)
        self.assertIn('<w:rStyle w:val="TableCode" /><w:rFonts w:ascii="Courier New"', out)
        self.assertIn('<w:sz w:val="22" />', out)


class DatabaseTables(unittest.TestCase):
    def test_fields_constraints_and_indexes_come_from_the_schema(self):
        schema = json.loads((ROOT / "db/schema.json").read_text(encoding="utf-8"))
        descriptions = database.load_descriptions(ROOT / "docs/db-fields.tsv") | {"users.email": "Адрес"}
        text = database.collections_markdown(ROOT / "db/schema.json", descriptions)
        for name, collection in schema["collections"].items():
            self.assertIn(f"Коллекция `{name}`", text)
            for field in collection["validator"]["$jsonSchema"]["properties"]:
                self.assertIn(f"| `{field}` |", text)
            for index in collection["indexes"]:
                self.assertIn(f"`{index['name']}`", text)
        self.assertIn("| `email` | String | да | уникальное (индекс)", text)
        self.assertIn("| Адрес |", text)
        ttl_row = next(line for line in text.splitlines() if "`expires_at_ttl`" in line)
        self.assertIn("TTL: документ удаляется в момент, указанный в поле", ttl_row)

    def test_the_init_commands_create_every_collection_with_its_validator_and_indexes(self):
        schema = json.loads((ROOT / "db/schema.json").read_text(encoding="utf-8"))
        commands, _how = database.init_commands(ROOT)
        self.assertEqual(commands, database._schema_commands(schema))
        text = database.init_commands_markdown(ROOT)
        for name in schema["collections"]:
            self.assertIn(f'"create": "{name}"', text)
            self.assertIn(f'"createIndexes": "{name}"', text)
        self.assertIn('"validationLevel": "strict"', text)


class Captures(unittest.TestCase):
    def test_the_chapters_name_captures_in_order_and_a_missing_one_names_e2e_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "01.md").write_text("text\n@capture ticket\n`@capture quoted`\n", encoding="utf-8")
            (folder / "02.md").write_text("@capture ws-handshake\n", encoding="utf-8")
            names = captures.named_in(sorted(folder.glob("*.md")))
            self.assertEqual(names, ["ticket", "ws-handshake"])
            (folder / "ticket.txt").write_text("POST /api/rooms/1/ticket HTTP/1.1\n", encoding="utf-8")
            with self.assertRaises(captures.MissingCaptures) as refused:
                captures.check_present(names, folder)
            self.assertIn("ws-handshake.txt", str(refused.exception))
            self.assertNotIn("ticket.txt", str(refused.exception))
            self.assertIn("e2e/run", str(refused.exception))
            self.assertIn("```text\nPOST /api/rooms/1/ticket HTTP/1.1\n```", captures.markdown("ticket", folder))


class Placeholders(unittest.TestCase):
    def test_the_shipped_defaults_are_all_reported_as_placeholders(self):
        values = variables.load(ROOT / "docs/report.env", {})
        self.assertEqual(placeholders.variables_in_use(values), list(placeholders.TITLE_PAGE))
        for name, placeholder in placeholders.TITLE_PAGE.items():
            self.assertEqual(values[name], placeholder, f"docs/report.env ships {name} as the placeholder")

    def test_a_variable_set_to_the_authors_data_is_no_longer_one(self):
        environment = {"REPORT_SURNAME": "Иванов", "REPORT_NAME": "Иван", "REPORT_UNIVERSITY": "МГТУ им. Н. Э. Баумана"}
        values = variables.load(ROOT / "docs/report.env", environment)
        in_use = placeholders.variables_in_use(values)
        self.assertNotIn("REPORT_SURNAME", in_use)
        self.assertNotIn("REPORT_UNIVERSITY", in_use)
        self.assertIn("REPORT_GROUP", in_use)
        self.assertNotIn("Фамилия_Имя", variables.output_stem(values))

    def test_the_test_pictures_are_recognised_and_others_are_not(self):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "fake.png").write_bytes(placeholder_pictures.page(64, 64, seed=1))
            # The same picture without the mark, as a browser's screenshot would be.
            (folder / "real.png").write_bytes(placeholder_pictures._png(2, 1, [b"\x00" * 6], mark=False))
            (folder / "not-a-png.png").write_bytes(b"GIF89a")
            self.assertEqual(
                placeholders.pictures_in_use(["fake.png", "real.png", "not-a-png.png", "missing.png"], folder),
                ["fake.png"],
            )

    def test_the_test_captures_are_recognised_and_others_are_not(self):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "fake.txt").write_text(placeholders.CAPTURE_MARK + "\nticket\n", encoding="utf-8")
            (folder / "real.txt").write_text("POST /api/rooms/1/ticket HTTP/1.1\n", encoding="utf-8")
            files = [folder / name for name in ("fake.txt", "real.txt", "missing.txt")]
            self.assertEqual(placeholders.captures_in_use(files), ["fake.txt"])

    def test_the_warning_is_a_box_naming_every_placeholder_and_the_way_out(self):
        values = {"REPORT_UNIVERSITY": "Наименование университета", "REPORT_SURNAME": "Фамилия"}
        box = placeholders.report(values, ["REPORT_SURNAME", "REPORT_UNIVERSITY"], ["01-landing.png"], 24, final=False)
        lines = box.splitlines()
        self.assertEqual(len({len(line) for line in lines}), 1, "every line of the box is as wide")
        self.assertTrue(lines[0].startswith("╔") and lines[-1].startswith("╚"))
        self.assertIn("WARNING", box)
        self.assertIn("REPORT_UNIVERSITY='Наименование университета'", box)
        self.assertIn("1 of 24 are placeholders", box)
        self.assertIn("e2e/run", box)
        self.assertIn("--final", box)
        self.assertIn("REFUSED", placeholders.report(values, ["REPORT_SURNAME"], [], 24, final=True))


if __name__ == "__main__":
    unittest.main()
