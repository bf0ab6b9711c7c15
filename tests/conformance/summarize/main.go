// Command summarize turns `go test -json` output of the go-tfe integration
// tests into per-test result lines, and compares them with the recorded
// baseline (tests/conformance/RESULTS.md). It is a helper of run.sh; it has
// no dependencies beyond the Go standard library.
//
//	summarize missing  -selected FILE EVENTS...
//	    print the selected top-level tests that have no result yet
//	summarize results  -selected FILE -out results.txt [-failures FILE] EVENTS...
//	    write "STATUS name" lines (tests and subtests, sorted by name) and
//	    print "go-tfe: N passed, N failed, N skipped"
//	summarize compare  -baseline RESULTS.md -results results.txt [-selected FILE]
//	    exit 1 if a baseline PASS now fails, is skipped or is missing;
//	    exit 3 if there is no baseline yet
//	summarize record   -results results.txt -out RESULTS.md [-version V] [-note S]...
//	    write a new baseline
//	summarize select   -list tests.txt -known LIST -out FILE -serial FILE [-complete] [-filter RE]
//	    check the classified list (select.go) against the binary's tests and
//	    write the names to run in parallel shards and alone
//	summarize expect   -list tests.txt -results results.txt
//	    exit 1 if a test the list expects to pass did not; note the ones
//	    listed as failing that now pass
//	summarize verdict  EVENTS...
//	    print PASS, FAIL or SKIP (with why) for one pattern's test binary
//	summarize watch    -out EVENTS -per-test SECONDS -- go test -json ...
//	    run the command, copy its stdout to EVENTS, and kill it (its whole
//	    process group) when one top-level test runs longer than SECONDS; the
//	    hung test is then recorded as failed so the caller can go on with the
//	    tests that did not run
//
// EVENTS are files of `go test -json` lines; lines that are not JSON (for
// example build output) are ignored. When several files are given, a later
// result for the same test replaces an earlier one.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"
)

type event struct {
	Action string
	Test   string
	Output string
}

const (
	statusPass = "PASS"
	statusFail = "FAIL"
	statusSkip = "SKIP"
	statusRun  = "RUN" // started, never finished: crash or timeout
)

// maxOutputLines bounds the output kept per test for the failures log.
const maxOutputLines = 200

type testResult struct {
	status string
	output []string
	note   string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	code := 0
	switch os.Args[1] {
	case "missing":
		err = cmdMissing(os.Args[2:])
	case "results":
		err = cmdResults(os.Args[2:])
	case "compare":
		code, err = cmdCompare(os.Args[2:])
	case "record":
		err = cmdRecord(os.Args[2:])
	case "watch":
		code, err = cmdWatch(os.Args[2:])
	case "select":
		err = cmdSelect(os.Args[2:])
	case "expect":
		code, err = cmdExpect(os.Args[2:])
	case "verdict":
		err = cmdVerdict(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: summarize missing|results|compare|record|select|expect|watch [flags] [EVENT-FILES...]")
	os.Exit(2)
}

// readList reads a test list: one name per line, '#' starts a comment.
func readList(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var names []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" || seen[line] {
			continue
		}
		seen[line] = true
		names = append(names, line)
	}
	return names, nil
}

// parseEvents reads go test -json files into per-test results.
func parseEvents(files []string) (map[string]*testResult, []string, error) {
	results := map[string]*testResult{}
	var pkgOutput []string
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		// Tests that called t.Parallel() wait paused until the sequential
		// tests are done; if the binary dies before that they never ran.
		paused := map[string]bool{}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1024*1024), 64*1024*1024)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 || line[0] != '{' {
				continue
			}
			var ev event
			if json.Unmarshal(line, &ev) != nil {
				continue
			}
			if ev.Test == "" {
				if ev.Action == "output" && len(pkgOutput) < maxOutputLines {
					pkgOutput = append(pkgOutput, strings.TrimRight(ev.Output, "\n"))
				}
				continue
			}
			r := results[ev.Test]
			switch ev.Action {
			case "run":
				// a (re)run starts afresh
				results[ev.Test] = &testResult{status: statusRun}
				paused[ev.Test] = false
			case "pause":
				paused[ev.Test] = true
			case "cont":
				paused[ev.Test] = false
			case "pass", "fail", "skip":
				paused[ev.Test] = false
				if r == nil {
					r = &testResult{}
					results[ev.Test] = r
				}
				r.status = strings.ToUpper(ev.Action)
			case "output":
				if r == nil {
					r = &testResult{status: statusRun}
					results[ev.Test] = r
				}
				if len(r.output) < maxOutputLines {
					r.output = append(r.output, strings.TrimRight(ev.Output, "\n"))
				} else if len(r.output) == maxOutputLines {
					r.output = append(r.output, "    ... (output truncated)")
				}
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		// still paused at the end of this binary's events: not run, so
		// that `missing` lists it for the next binary
		for name, p := range paused {
			if p && results[name] != nil && results[name].status == statusRun {
				delete(results, name)
			}
		}
	}
	return results, pkgOutput, nil
}

func topLevel(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return name
}

func cmdMissing(args []string) error {
	fs := flag.NewFlagSet("missing", flag.ExitOnError)
	selected := fs.String("selected", "", "file listing the selected top-level tests")
	fs.Parse(args)
	names, err := readList(*selected)
	if err != nil {
		return err
	}
	results, _, err := parseEvents(fs.Args())
	if err != nil {
		return err
	}
	for _, n := range names {
		if results[n] == nil {
			fmt.Println(n)
		}
	}
	return nil
}

func cmdResults(args []string) error {
	fs := flag.NewFlagSet("results", flag.ExitOnError)
	selected := fs.String("selected", "", "file listing the selected top-level tests")
	out := fs.String("out", "", "results file to write")
	failures := fs.String("failures", "", "optional log of the output of failed tests")
	fs.Parse(args)
	if *out == "" {
		return errors.New("results: -out is required")
	}
	names, err := readList(*selected)
	if err != nil {
		return err
	}
	results, pkgOutput, err := parseEvents(fs.Args())
	if err != nil {
		return err
	}

	var notRun, crashed []string
	for _, n := range names {
		if results[n] == nil {
			results[n] = &testResult{status: statusFail, note: "did not run"}
			notRun = append(notRun, n)
		}
	}
	for n, r := range results {
		if r.status == statusRun || r.status == "" {
			r.status = statusFail
			r.note = "started but never finished (crash, panic or timeout)"
			crashed = append(crashed, n)
		}
	}

	all := make([]string, 0, len(results))
	for n := range results {
		all = append(all, n)
	}
	sort.Strings(all)

	var buf strings.Builder
	counts := map[string]int{}
	for _, n := range all {
		st := results[n].status
		counts[st]++
		fmt.Fprintf(&buf, "%s %s\n", st, n)
	}
	if err := os.WriteFile(*out, []byte(buf.String()), 0o644); err != nil {
		return err
	}

	if *failures != "" {
		if err := writeFailures(*failures, all, results, pkgOutput); err != nil {
			return err
		}
	}

	sort.Strings(crashed)
	for _, n := range notRun {
		fmt.Printf("did not run: %s\n", n)
	}
	for _, n := range crashed {
		fmt.Printf("did not finish: %s\n", n)
	}
	fmt.Printf("go-tfe: %d passed, %d failed, %d skipped\n",
		counts[statusPass], counts[statusFail], counts[statusSkip])
	return nil
}

func writeFailures(path string, all []string, results map[string]*testResult, pkgOutput []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	any := false
	for _, n := range all {
		r := results[n]
		if r.status != statusFail {
			continue
		}
		any = true
		fmt.Fprintf(w, "=== FAIL %s", n)
		if r.note != "" {
			fmt.Fprintf(w, " (%s)", r.note)
		}
		fmt.Fprintln(w)
		for _, l := range r.output {
			fmt.Fprintln(w, l)
		}
		fmt.Fprintln(w)
	}
	if any && len(pkgOutput) > 0 {
		fmt.Fprintln(w, "=== package output")
		for _, l := range pkgOutput {
			fmt.Fprintln(w, l)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var resultLine = regexp.MustCompile(`^(PASS|FAIL|SKIP) (\S.*)$`)

// readResults reads "STATUS name" lines; in a markdown file only the lines
// inside fenced blocks count.
func readResults(path string, markdown bool) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseResults(f, markdown)
}

func parseResults(r io.Reader, markdown bool) (map[string]string, error) {
	res := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	inFence := !markdown
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \r")
		if markdown && strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if !inFence {
			continue
		}
		if m := resultLine.FindStringSubmatch(line); m != nil {
			res[m[2]] = m[1]
		}
	}
	return res, sc.Err()
}

func cmdCompare(args []string) (int, error) {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	baselinePath := fs.String("baseline", "", "RESULTS.md")
	resultsPath := fs.String("results", "", "results.txt")
	selected := fs.String("selected", "", "optional: only compare tests under these top-level tests")
	fs.Parse(args)

	baseline, err := readResults(*baselinePath, true)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Printf("no baseline yet (%s does not exist)\n", *baselinePath)
		return 3, nil
	}
	if err != nil {
		return 0, err
	}
	if len(baseline) == 0 {
		fmt.Printf("no baseline yet (%s records no results)\n", *baselinePath)
		return 3, nil
	}
	current, err := readResults(*resultsPath, false)
	if err != nil {
		return 0, err
	}
	var scope map[string]bool
	if *selected != "" {
		names, err := readList(*selected)
		if err != nil {
			return 0, err
		}
		scope = map[string]bool{}
		for _, n := range names {
			scope[n] = true
		}
	}

	var regressions, improved []string
	outOfScope := 0
	for name, st := range baseline {
		if scope != nil && !scope[topLevel(name)] {
			outOfScope++
			continue
		}
		if st != statusPass {
			continue
		}
		now, ok := current[name]
		switch {
		case !ok:
			regressions = append(regressions, fmt.Sprintf("%s (baseline PASS, now missing)", name))
		case now != statusPass:
			regressions = append(regressions, fmt.Sprintf("%s (baseline PASS, now %s)", name, now))
		}
	}
	for name, st := range current {
		if st == statusPass && baseline[name] != statusPass {
			improved = append(improved, name)
		}
	}
	sort.Strings(regressions)
	sort.Strings(improved)

	if outOfScope > 0 {
		fmt.Printf("baseline: %d entries outside the selected tests were not compared\n", outOfScope)
	}
	if len(improved) > 0 {
		fmt.Printf("newly passing (not PASS in the baseline; run.sh --record to keep them): %d\n", len(improved))
		for _, n := range improved {
			fmt.Printf("  NEW PASS %s\n", n)
		}
	}
	if len(regressions) > 0 {
		fmt.Printf("REGRESSIONS against the baseline: %d\n", len(regressions))
		for _, r := range regressions {
			fmt.Printf("  REGRESSION %s\n", r)
		}
		return 1, nil
	}
	fmt.Println("no regressions against the baseline")
	return 0, nil
}

func cmdRecord(args []string) error {
	fs := flag.NewFlagSet("record", flag.ExitOnError)
	resultsPath := fs.String("results", "", "results.txt")
	out := fs.String("out", "", "RESULTS.md to write")
	version := fs.String("version", "", "go-tfe version")
	var notes multiFlag
	fs.Var(&notes, "note", "extra line for the header (repeatable)")
	fs.Parse(args)
	if *out == "" {
		return errors.New("record: -out is required")
	}

	current, err := readResults(*resultsPath, false)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(current))
	counts := map[string]int{}
	for n, st := range current {
		names = append(names, n)
		counts[st]++
	}
	sort.Strings(names)

	var b strings.Builder
	b.WriteString("# go-tfe conformance baseline\n\n")
	b.WriteString("Written by `tests/conformance/run.sh --record`; do not edit by hand.\n")
	b.WriteString("Every `PASS` line below is guarded: `run.sh` exits 1 when such a test\n")
	b.WriteString("later fails, is skipped or goes missing. See README.md.\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- go-tfe version: %s\n", *version)
	fmt.Fprintf(&b, "- Go: %s\n", runtime.Version())
	for _, n := range notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	fmt.Fprintf(&b, "- Counts: %d passed, %d failed, %d skipped (%d total)\n\n",
		counts[statusPass], counts[statusFail], counts[statusSkip], len(names))
	b.WriteString("```\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", current[n], n)
	}
	b.WriteString("```\n")

	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}
