"""What `majlis.workshop` offers (read by lazy_loader and by type checkers)."""

from .debrief import (
    write_debrief as write_debrief,
)
from .debrief_texts import (
    DebriefTexts as DebriefTexts,
)
from .serve import (
    serve_runs as serve_runs,
)
from .tags import (
    add_annotation as add_annotation,
    dumps as dumps,
    read_annotations as read_annotations,
    remove_annotation as remove_annotation,
    to_csv as to_csv,
)
from .viewer import (
    write_html as write_html,
)
