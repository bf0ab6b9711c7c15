package main

// The classified test list (tests.txt) and what run.sh runs from it.
//
// A line is
//
//	[serial] [KIND] TestName [reason...]
//
// with '#' starting a comment. Without a KIND the test is expected to
// pass. KIND says why it is not:
//
//	fail   runs, and fails at least in part here (reason required)
//	skip   runs, and skips itself here (reason required)
//	vcs    needs GitHub/VCS credentials; runs, and skips or fails (reason)
//	paid   needs a paid HCP Terraform plan's feature (reason required)
//	norun  is not run at all (reason required)
//
// "serial" puts the test in the phase that runs alone after the parallel
// shards: it changes or lists what every test shares (the admin user,
// all users or organizations).

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

type listEntry struct {
	name   string
	kind   string // "" (expected to pass), fail, skip, vcs, paid, norun
	serial bool
	reason string
	line   int
}

var kinds = map[string]bool{"fail": true, "skip": true, "vcs": true, "paid": true, "norun": true}

func readClassified(path string) ([]listEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []listEntry
	seen := map[string]int{}
	var errs []string
	for i, line := range strings.Split(string(data), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		e := listEntry{line: i + 1}
		if f[0] == "serial" {
			e.serial = true
			f = f[1:]
		}
		if len(f) > 0 && kinds[f[0]] {
			e.kind = f[0]
			f = f[1:]
		}
		if len(f) == 0 || !strings.HasPrefix(f[0], "Test") {
			errs = append(errs, fmt.Sprintf("%s:%d: expected [serial] [KIND] TestName [reason]", path, i+1))
			continue
		}
		e.name = f[0]
		e.reason = strings.Join(f[1:], " ")
		if e.kind != "" && e.reason == "" {
			errs = append(errs, fmt.Sprintf("%s:%d: %s %s needs a reason", path, i+1, e.kind, e.name))
		}
		if e.kind == "" && e.reason != "" {
			errs = append(errs, fmt.Sprintf("%s:%d: %s: text after a test expected to pass (a KIND missing?)", path, i+1, e.name))
		}
		if prev, dup := seen[e.name]; dup {
			errs = append(errs, fmt.Sprintf("%s:%d: %s is listed again (line %d)", path, i+1, e.name, prev))
			continue
		}
		seen[e.name] = i + 1
		out = append(out, e)
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return out, nil
}

// cmdSelect checks the list against the names the test binary has and
// writes the tests to run: the parallel ones to -out, the serial ones to
// -serial.
func cmdSelect(args []string) error {
	fs := flag.NewFlagSet("select", flag.ExitOnError)
	list := fs.String("list", "", "the classified test list (tests.txt)")
	known := fs.String("known", "", "file of the test binary's top-level tests (go test -list)")
	complete := fs.Bool("complete", false, "every known test must be listed")
	filter := fs.String("filter", "", "extended regexp: only names matching it")
	out := fs.String("out", "", "file for the tests to run in parallel shards")
	serial := fs.String("serial", "", "file for the tests to run alone afterwards")
	fs.Parse(args)
	if *list == "" || *known == "" || *out == "" || *serial == "" {
		return errors.New("select: need -list, -known, -out and -serial")
	}
	entries, err := readClassified(*list)
	if err != nil {
		return err
	}
	knownNames, err := readList(*known)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, n := range knownNames {
		if strings.HasPrefix(n, "Test") {
			have[n] = true
		}
	}
	var unknown, unlisted []string
	listed := map[string]bool{}
	for _, e := range entries {
		listed[e.name] = true
		if !have[e.name] {
			unknown = append(unknown, e.name)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("not a test in this go-tfe version:\n  %s", strings.Join(unknown, "\n  "))
	}
	if *complete {
		for n := range have {
			if !listed[n] {
				unlisted = append(unlisted, n)
			}
		}
		sort.Strings(unlisted)
		if len(unlisted) > 0 {
			return fmt.Errorf("%d tests of this go-tfe version are not in %s (list each, with a KIND and reason unless it passes):\n  %s",
				len(unlisted), *list, strings.Join(unlisted, "\n  "))
		}
	}
	var re *regexp.Regexp
	if *filter != "" {
		if re, err = regexp.Compile(*filter); err != nil {
			return fmt.Errorf("filter: %w", err)
		}
	}
	var par, ser strings.Builder
	for _, e := range entries {
		if e.kind == "norun" || (re != nil && !re.MatchString(e.name)) {
			continue
		}
		if e.serial {
			fmt.Fprintln(&ser, e.name)
		} else {
			fmt.Fprintln(&par, e.name)
		}
	}
	if err := os.WriteFile(*out, []byte(par.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(*serial, []byte(ser.String()), 0o644)
}

// cmdExpect reports top-level tests whose result disagrees with their
// classification: one expected to pass that did not (exit 1), one listed
// as failing that now passes (a note: drop its "fail").
func cmdExpect(args []string) (int, error) {
	fs := flag.NewFlagSet("expect", flag.ExitOnError)
	list := fs.String("list", "", "the classified test list (tests.txt)")
	resultsPath := fs.String("results", "", "results.txt")
	fs.Parse(args)
	entries, err := readClassified(*list)
	if err != nil {
		return 0, err
	}
	res, err := readResults(*resultsPath, false)
	if err != nil {
		return 0, err
	}
	var bad, better []string
	for _, e := range entries {
		st, ok := res[e.name]
		if !ok {
			continue // not selected in this run
		}
		switch {
		case e.kind == "" && st != statusPass:
			bad = append(bad, fmt.Sprintf("%s (expected to pass, %s)", e.name, st))
		case e.kind == "fail" && st == statusPass:
			better = append(better, e.name)
		}
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for _, n := range better {
		fmt.Fprintf(w, "  NOW PASSES %s (listed as fail: drop the KIND in tests.txt)\n", n)
	}
	for _, b := range bad {
		fmt.Fprintf(w, "  UNEXPECTED %s\n", b)
	}
	if len(bad) > 0 {
		fmt.Fprintf(w, "%d tests listed as passing did not pass\n", len(bad))
		return 1, nil
	}
	return 0, nil
}

// cmdVerdict prints the result of one `go test -run PATTERN` binary:
// FAIL if a test failed or never finished, or none ran; else PASS if one
// passed; else SKIP (every test skipped itself).
func cmdVerdict(args []string) error {
	fs := flag.NewFlagSet("verdict", flag.ExitOnError)
	fs.Parse(args)
	res, _, err := parseEvents(fs.Args())
	if err != nil {
		return err
	}
	verdict, why := statusSkip, "every test skipped itself"
	if len(res) == 0 {
		verdict, why = statusFail, "no test ran"
	}
	var failed []string
	for name, r := range res {
		switch r.status {
		case statusPass:
			if verdict == statusSkip && len(res) > 0 {
				verdict, why = statusPass, ""
			}
		case statusSkip:
		default:
			failed = append(failed, name)
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		verdict, why = statusFail, "failed: "+strings.Join(failed, ", ")
	}
	if why != "" {
		fmt.Printf("%s %s\n", verdict, why)
	} else {
		fmt.Println(verdict)
	}
	return nil
}
