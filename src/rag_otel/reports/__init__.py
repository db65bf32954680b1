"""Daily and weekly reports: build from the store, render (JSON, Markdown, HTML, PNG), deliver, schedule.

``run_report`` is the one call behind the CLI, the scheduler and the web API's "run now";
``build_report`` + ``render``/``write_report``/``deliver`` are its parts for callers that need one.
"""

from rag_otel.reports.builder import Report, build_report
from rag_otel.reports.deliver import default_out_dir, deliver, email_message, webhook_payload, write_report
from rag_otel.reports.period import ReportPeriod, report_period
from rag_otel.reports.render import parse_formats, render
from rag_otel.reports.run import get_report, list_reports, report_file, report_files, run_report
from rag_otel.reports.schedule import ReportScheduler, last_occurrence

__all__ = [
    "Report", "ReportPeriod", "ReportScheduler", "build_report", "default_out_dir", "deliver", "email_message",
    "get_report", "last_occurrence", "list_reports", "parse_formats", "render", "report_file", "report_files",
    "report_period", "run_report", "webhook_payload", "write_report",
]
