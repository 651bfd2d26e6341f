"""The main window's widgets and where they sit: banner, notice, start page or image, proposal
strip, the four docks and the status bar. Construction only; the window connects them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractItemModel, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from scubasteve.gui.canvas.scene import CanvasScene
from scubasteve.gui.canvas.view import ImageView
from scubasteve.gui.views.docks import AnnotationsPanel, ImageListPanel, StatsPanel
from scubasteve.gui.views.label_picker import LabelPicker
from scubasteve.gui.views.panels import NoticeBar, PreannotatePanel, ProblemBanner, StatusBar
from scubasteve.gui.views.proposal_strip import ProposalStrip
from scubasteve.gui.views.start_page import StartPage


@dataclass
class WindowViews:
    view: ImageView
    banner: ProblemBanner
    notice: NoticeBar
    strip: ProposalStrip
    start_page: StartPage
    pages: QStackedWidget  # the start page until a folder is open, then the image
    images_panel: ImageListPanel
    annotations_panel: AnnotationsPanel
    preannotate_panel: PreannotatePanel
    stats_panel: StatsPanel
    docks: dict[str, QDockWidget]
    status: StatusBar
    label_picker: LabelPicker


def build_views(
    window: QMainWindow,
    scene: CanvasScene,
    image_model: QAbstractItemModel,
    recent_folders: list[str] | list[Path],
) -> WindowViews:
    view = ImageView(scene)
    banner, notice, strip = ProblemBanner(), NoticeBar(), ProposalStrip()
    start_page = StartPage()
    start_page.show_recent(recent_folders)
    pages = QStackedWidget()
    pages.addWidget(start_page)
    pages.addWidget(view)
    central = QWidget()
    layout = QVBoxLayout(central)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    layout.addWidget(banner)
    layout.addWidget(notice)
    layout.addWidget(pages, 1)
    layout.addWidget(strip)
    strip.hide()  # until a folder is open
    window.setCentralWidget(central)

    images_panel = ImageListPanel(image_model)
    annotations_panel, preannotate_panel = AnnotationsPanel(), PreannotatePanel()
    stats_panel = StatsPanel()
    docks: dict[str, QDockWidget] = {}
    left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
    for title, widget, area in (
        ("Images", images_panel, left),
        ("Annotations", annotations_panel, right),
        ("Pre-annotate", preannotate_panel, right),
        ("Time per object", stats_panel, right),
    ):
        dock = QDockWidget(title, window)
        dock.setObjectName(title)
        dock.setWidget(widget)
        window.addDockWidget(area, dock)
        docks[title] = dock
    images_panel.setMinimumWidth(190)
    window.resizeDocks(
        [docks["Images"], docks["Annotations"]], [230, 300], Qt.Orientation.Horizontal
    )
    status = StatusBar()
    window.setStatusBar(status)
    return WindowViews(
        view, banner, notice, strip, start_page, pages, images_panel, annotations_panel,
        preannotate_panel, stats_panel, docks, status, LabelPicker(window),
    )  # fmt: skip
