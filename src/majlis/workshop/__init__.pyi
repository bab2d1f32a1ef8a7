"""What `majlis.workshop` offers (read by lazy_loader and by type checkers)."""

from .debrief import (
    render_debrief as render_debrief,
    write_debrief as write_debrief,
)
from .debrief_texts import (
    DebriefTexts as DebriefTexts,
    load_texts as load_texts,
)
from .export import (
    export_debrief as export_debrief,
    find_chromium as find_chromium,
)
from .live_server import (
    LiveServer as LiveServer,
    serve_live as serve_live,
)
from .serve import (
    RunsServer as RunsServer,
    serve_runs as serve_runs,
)
from .tags import (
    Annotation as Annotation,
    add_annotation as add_annotation,
    dumps as dumps,
    read_annotations as read_annotations,
    remove_annotation as remove_annotation,
    to_csv as to_csv,
)
from .timeline import (
    timeline as timeline,
)
from .turns import (
    split_turns as split_turns,
    turn_contexts as turn_contexts,
)
from .viewer import (
    build_data as build_data,
    render_html as render_html,
    write_html as write_html,
)
