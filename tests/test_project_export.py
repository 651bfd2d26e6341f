"""Exporting a folder to COCO without the window: accepted shapes only, bad files named."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.deepmask_data import write_labelme_project

from scubasteve.core.annotation import REVIEW_FLAG
from scubasteve.core.project import Project
from scubasteve.io.labelme import read_labelme, write_labelme
from scubasteve.io.project_export import default_export_path, export_project_coco


def test_export_leaves_out_unreadable_files_and_unreviewed_shapes(tmp_path: Path) -> None:
    folder = write_labelme_project(tmp_path / "photos", 4)
    (folder / "img01.json").write_text("{ broken", encoding="utf-8")
    doc = read_labelme(folder / "img02.json")
    doc.annotations[0].flags[REVIEW_FLAG] = True
    write_labelme(doc, folder / "img02.json")
    project = Project.open(folder)
    out = tmp_path / "coco.json"

    summary = export_project_coco(project, out)

    data = json.loads(out.read_text(encoding="utf-8"))
    assert {im["file_name"] for im in data["images"]} == {"img00.png", "img02.png", "img03.png"}
    assert len(data["annotations"]) == 2  # img00 and img03; img02's one shape awaits review
    assert summary.images == 3 and summary.skipped == ["img01.json"] and summary.unreviewed == 1
    text = summary.text()
    assert "img01.json" in text and "1 pre-annotation(s) not yet reviewed" in text


def test_open_documents_win_over_files_and_known_problems_are_not_read(tmp_path: Path) -> None:
    folder = write_labelme_project(tmp_path / "photos", 2)
    project = Project.open(folder)
    edited = read_labelme(folder / "img00.json")
    edited.path = project.images[0]
    edited.annotations = []
    summary = export_project_coco(
        project,
        tmp_path / "coco.json",
        open_docs={str(project.images[0]): edited},
        unreadable={str(project.images[1])},
    )
    data = json.loads((tmp_path / "coco.json").read_text(encoding="utf-8"))
    assert data["annotations"] == [] and summary.skipped == ["img01.json"]


def test_default_export_path_is_beside_the_folder() -> None:
    assert default_export_path(Path("/data/photos")) == Path("/data/photos_coco.json")


def test_without_a_labels_file_only_the_labels_used_become_categories(tmp_path: Path) -> None:
    folder = write_labelme_project(tmp_path / "photos", 2)
    project = Project.open(folder)  # no labels.txt: the COCO 80 are offered in the window
    assert len(project.labels) == 80
    summary = export_project_coco(project, tmp_path / "coco.json")
    data = json.loads((tmp_path / "coco.json").read_text(encoding="utf-8"))
    used = [
        a.label for i in project.images for a in read_labelme(i.with_suffix(".json")).annotations
    ]
    assert [c["name"] for c in data["categories"]] == used  # not the 80 offered
    assert "the labels used" in summary.text() and f"{len(used)} categor" in summary.text()


def test_a_labels_file_fixes_the_categories_and_the_summary_says_why(tmp_path: Path) -> None:
    folder = write_labelme_project(tmp_path / "photos", 2)
    used = {a.label for p in sorted(folder.glob("*.json")) for a in read_labelme(p).annotations}
    labels = ["zebra", *sorted(used), "unused thing"]
    (folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    summary = export_project_coco(Project.open(folder), tmp_path / "coco.json")
    data = json.loads((tmp_path / "coco.json").read_text(encoding="utf-8"))
    assert [c["name"] for c in data["categories"]] == labels  # the file's list, ids in its order
    assert "labels.txt" in summary.text() and "2 without objects" in summary.text()
