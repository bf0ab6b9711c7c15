// tfe-apply: one remote apply driven through the TFE API with go-tfe, the
// way the stock CLI's cloud backend drives it (configuration version,
// upload, run with auto-apply, follow the run, read both logs), but
// polling every few milliseconds instead of the CLI's fixed 0.5-3 s
// waits.  bench/run_overhead.sh times it beside a raw local `tofu apply`
// to show what Terrace itself adds to a remote apply.
//
//	TFE_ADDRESS=https://host:port TFE_TOKEN=... SSL_CERT_FILE=ca.pem \
//	  tfe-apply -org ORG -workspace WS -dir CONFIG_DIR -var n=VALUE \
//	  [-expect-added N -expect-destroyed N]
//
// Prints the plan and apply logs; exits non-zero unless the run ends
// applied (with the expected counts, when given).  With -counts-from-log
// the counts are read from the apply log's "Apply complete!" line instead
// of the apply's attributes (otfd does not serialize them).
//
// SPDX-License-Identifier: MPL-2.0
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	tfe "github.com/hashicorp/go-tfe"
)

const poll = 5 * time.Millisecond

var ansiRe = regexp.MustCompile("\x1b\\[[0-9;]*m")

var completeRe = regexp.MustCompile(
	`Apply complete! Resources: (?:\d+ imported, )?(\d+) added, \d+ changed, (\d+) destroyed`)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tfe-apply: "+format+"\n", args...)
	os.Exit(1)
}

type vars []string

func (v *vars) String() string     { return strings.Join(*v, ",") }
func (v *vars) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	org := flag.String("org", "", "organization")
	wsName := flag.String("workspace", "", "workspace (execution mode remote)")
	dir := flag.String("dir", ".", "configuration directory")
	added := flag.Int("expect-added", -1, "additions the apply must report")
	destroyed := flag.Int("expect-destroyed", -1, "destructions it must report")
	fromLog := flag.Bool("counts-from-log", false,
		"read the counts from the apply log, not the apply's attributes")
	var vs vars
	flag.Var(&vs, "var", "key=value, a run variable (string), repeatable")
	flag.Parse()

	ctx := context.Background()
	client, err := tfe.NewClient(tfe.DefaultConfig())
	if err != nil {
		fail("client: %v", err)
	}
	ws, err := client.Workspaces.Read(ctx, *org, *wsName)
	if err != nil {
		fail("workspace: %v", err)
	}
	cv, err := client.ConfigurationVersions.Create(ctx, ws.ID,
		tfe.ConfigurationVersionCreateOptions{AutoQueueRuns: tfe.Bool(false)})
	if err != nil {
		fail("configuration version: %v", err)
	}
	if err := client.ConfigurationVersions.Upload(ctx, cv.UploadURL, *dir); err != nil {
		fail("upload: %v", err)
	}
	for cv.Status != tfe.ConfigurationUploaded {
		if cv.Status == tfe.ConfigurationErrored {
			fail("configuration errored: %s", cv.ErrorMessage)
		}
		time.Sleep(poll)
		if cv, err = client.ConfigurationVersions.Read(ctx, cv.ID); err != nil {
			fail("configuration version: %v", err)
		}
	}
	var runVars []*tfe.RunVariable
	for _, kv := range vs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fail("-var %q: want key=value", kv)
		}
		runVars = append(runVars, &tfe.RunVariable{Key: k, Value: fmt.Sprintf("%q", v)})
	}
	r, err := client.Runs.Create(ctx, tfe.RunCreateOptions{
		Workspace:            ws,
		ConfigurationVersion: cv,
		AutoApply:            tfe.Bool(true),
		Variables:            runVars,
	})
	if err != nil {
		fail("run: %v", err)
	}
	for {
		switch r.Status {
		case tfe.RunApplied:
		case tfe.RunErrored, tfe.RunCanceled, tfe.RunDiscarded,
			tfe.RunPlannedAndFinished, tfe.RunStatus("force_canceled"):
			fail("run %s ended %s", r.ID, r.Status)
		default:
			time.Sleep(poll)
			if r, err = client.Runs.Read(ctx, r.ID); err != nil {
				fail("run: %v", err)
			}
			continue
		}
		break
	}
	logs, err := client.Plans.Logs(ctx, r.Plan.ID)
	if err == nil {
		_, err = io.Copy(os.Stdout, logs)
	}
	if err != nil {
		fail("plan log: %v", err)
	}
	var applyLog []byte
	logs, err = client.Applies.Logs(ctx, r.Apply.ID)
	if err == nil {
		applyLog, err = io.ReadAll(logs)
	}
	if err == nil {
		_, err = os.Stdout.Write(applyLog)
	}
	if err != nil {
		fail("apply log: %v", err)
	}
	var nAdded, nDestroyed int
	if *fromLog {
		m := completeRe.FindSubmatch(ansiRe.ReplaceAll(applyLog, nil))
		if m == nil {
			fail("run %s: no \"Apply complete!\" line in the apply log", r.ID)
		}
		nAdded, _ = strconv.Atoi(string(m[1]))
		nDestroyed, _ = strconv.Atoi(string(m[2]))
	} else {
		a, err := client.Applies.Read(ctx, r.Apply.ID)
		if err != nil {
			fail("apply: %v", err)
		}
		nAdded, nDestroyed = a.ResourceAdditions, a.ResourceDestructions
	}
	if (*added >= 0 && nAdded != *added) ||
		(*destroyed >= 0 && nDestroyed != *destroyed) {
		fail("run %s applied %d added, %d destroyed", r.ID, nAdded, nDestroyed)
	}
}
