package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cmdWatch runs a `go test -json` command with a per-top-level-test time
// limit. go test only has a whole-binary -timeout, so without this one hung
// request (go-tfe's HTTP client has no timeout) would use up the budget of
// every test after it.
func cmdWatch(args []string) (int, error) {
	fs := flag.NewFlagSet("watch", flag.ExitOnError)
	out := fs.String("out", "", "file to copy the command's stdout (JSON events) to")
	perTest := fs.Int("per-test", 300, "seconds one top-level test may run")
	fs.Parse(args)
	argv := fs.Args()
	if *out == "" || len(argv) == 0 {
		return 0, errors.New("watch: need -out and a command")
	}
	f, err := os.Create(*out)
	if err != nil {
		return 0, err
	}
	defer f.Close()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = nil
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pgid := cmd.Process.Pid
	killGroup := func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

	var mu sync.Mutex
	// top-level tests running now, with when they (re)started: a test
	// paused by t.Parallel() is not running until it continues
	running := map[string]time.Time{}
	killed := ""
	w := bufio.NewWriter(f)
	writeLine := func(b []byte) {
		w.Write(b)
		w.WriteByte('\n')
	}

	// forward termination of the harness to the test processes
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		if _, ok := <-sigs; ok {
			killGroup()
			os.Exit(130)
		}
	}()

	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				mu.Lock()
				for name, started := range running {
					if killed == "" && time.Since(started) > time.Duration(*perTest)*time.Second {
						killed = name
						fmt.Fprintf(os.Stderr, "watchdog: %s ran longer than %ds; killing the test binary\n", name, *perTest)
						killGroup()
					}
				}
				mu.Unlock()
			}
		}
	}()

	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1024*1024), 64*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		mu.Lock()
		writeLine(line)
		var ev event
		if len(line) > 0 && line[0] == '{' && json.Unmarshal(line, &ev) == nil &&
			ev.Test != "" && !strings.Contains(ev.Test, "/") {
			switch ev.Action {
			case "run", "cont":
				running[ev.Test] = time.Now()
			case "pause", "pass", "fail", "skip":
				delete(running, ev.Test)
			}
		}
		mu.Unlock()
	}
	waitErr := cmd.Wait()
	close(done)
	signal.Stop(sigs)
	close(sigs)

	mu.Lock()
	defer mu.Unlock()
	if killed != "" {
		// Record the hung test as failed; its unfinished subtests are
		// reported as "did not finish" by `summarize results`.
		msg := fmt.Sprintf("watchdog: killed after %ds (CONFORMANCE_TEST_TIMEOUT)\n", *perTest)
		for _, ev := range []map[string]string{
			{"Action": "output", "Test": killed, "Output": msg},
			{"Action": "fail", "Test": killed},
		} {
			b, _ := json.Marshal(ev)
			writeLine(b)
		}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if killed != "" {
		return 124, nil
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	if waitErr != nil {
		return 0, waitErr
	}
	return 0, nil
}
