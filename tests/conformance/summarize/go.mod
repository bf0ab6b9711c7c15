module terrace.local/tests/conformance/summarize

go 1.21
