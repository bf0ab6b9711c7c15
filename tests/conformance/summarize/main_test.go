package main

// Tests of the event parsing that decides what a crashed test binary left
// undone, and of the classified test list.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A binary that panics in TestB while the parallel TestP waits paused:
// TestP never ran, so it has no result and is run again; TestB, which
// started and never finished, keeps its unfinished state.
func TestPausedParallelTestIsRunAgain(t *testing.T) {
	dir := t.TempDir()
	first := writeFile(t, dir, "1.json", strings.Join([]string{
		`{"Action":"run","Test":"TestP"}`,
		`{"Action":"output","Test":"TestP","Output":"=== PAUSE TestP\n"}`,
		`{"Action":"pause","Test":"TestP"}`,
		`{"Action":"run","Test":"TestA"}`,
		`{"Action":"pass","Test":"TestA"}`,
		`{"Action":"run","Test":"TestB"}`,
		`{"Action":"output","Test":"TestB","Output":"panic: boom\n"}`,
		`{"Action":"fail","Test":""}`,
	}, "\n"))
	res, _, err := parseEvents([]string{first})
	if err != nil {
		t.Fatal(err)
	}
	if res["TestP"] != nil {
		t.Errorf("paused TestP has a result %q; want none", res["TestP"].status)
	}
	if res["TestB"] == nil || res["TestB"].status != statusRun {
		t.Errorf("TestB: want unfinished")
	}
	if res["TestA"] == nil || res["TestA"].status != statusPass {
		t.Errorf("TestA: want PASS")
	}

	// the next binary runs what is missing; TestP passes there
	second := writeFile(t, dir, "2.json", strings.Join([]string{
		`{"Action":"run","Test":"TestP"}`,
		`{"Action":"pause","Test":"TestP"}`,
		`{"Action":"cont","Test":"TestP"}`,
		`{"Action":"pass","Test":"TestP"}`,
	}, "\n"))
	res, _, err = parseEvents([]string{first, second})
	if err != nil {
		t.Fatal(err)
	}
	if res["TestP"] == nil || res["TestP"].status != statusPass {
		t.Errorf("TestP after the second binary: want PASS")
	}
}

// A parallel test that continued and was running when the binary died
// did start: it stays unfinished (a failure), not silently re-run.
func TestContinuedParallelTestIsNotForgotten(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "1.json", strings.Join([]string{
		`{"Action":"run","Test":"TestP"}`,
		`{"Action":"pause","Test":"TestP"}`,
		`{"Action":"cont","Test":"TestP"}`,
	}, "\n"))
	res, _, err := parseEvents([]string{f})
	if err != nil {
		t.Fatal(err)
	}
	if res["TestP"] == nil || res["TestP"].status != statusRun {
		t.Errorf("TestP: want unfinished")
	}
}

func TestClassifiedList(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.txt", strings.Join([]string{
		"# comment",
		"TestA",
		"fail TestB  teams are missing   # trailing comment",
		"serial TestC",
		"serial skip TestD ENABLE_TFE only",
		"norun TestE hangs",
	}, "\n"))
	e, err := readClassified(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(e) != 5 || e[1].kind != "fail" || e[1].reason != "teams are missing" ||
		!e[2].serial || e[2].kind != "" || !e[3].serial || e[3].kind != "skip" {
		t.Errorf("parsed %+v", e)
	}
	known := writeFile(t, dir, "known.txt", "TestA\nTestB\nTestC\nTestD\nTestE\nTestF\nExampleX\n")
	par, ser := filepath.Join(dir, "par"), filepath.Join(dir, "ser")
	args := []string{"-list", good, "-known", known, "-out", par, "-serial", ser}
	if err := cmdSelect(args); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(par); string(b) != "TestA\nTestB\n" {
		t.Errorf("parallel: %q", b)
	}
	if b, _ := os.ReadFile(ser); string(b) != "TestC\nTestD\n" {
		t.Errorf("serial: %q", b)
	}
	// -complete: TestF is not classified
	err = cmdSelect(append(args, "-complete"))
	if err == nil || !strings.Contains(err.Error(), "TestF") {
		t.Errorf("-complete: got %v, want TestF named", err)
	}

	for _, bad := range []string{
		"fail TestA",          // no reason
		"TestA something",     // text after a passing test
		"TestA\nfail TestA x", // twice
		"sometimes TestA",     // not a kind, not a name
		"TestZ",               // not in the binary (select)
	} {
		p := writeFile(t, dir, "bad.txt", bad)
		err := cmdSelect([]string{"-list", p, "-known", known, "-out", par, "-serial", ser})
		if err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestExpect(t *testing.T) {
	dir := t.TempDir()
	list := writeFile(t, dir, "list.txt", "TestA\nfail TestB reason\nTestC\n")
	ok := writeFile(t, dir, "ok.txt", "PASS TestA\nPASS TestB\nFAIL TestB/sub\n")
	if code, err := cmdExpect([]string{"-list", list, "-results", ok}); err != nil || code != 0 {
		t.Errorf("all as expected: code %d, %v", code, err)
	}
	bad := writeFile(t, dir, "bad.txt", "FAIL TestA\nFAIL TestB\nSKIP TestC\n")
	if code, err := cmdExpect([]string{"-list", list, "-results", bad}); err != nil || code != 1 {
		t.Errorf("TestA failed: code %d, %v; want 1", code, err)
	}
}
