package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"wengang/internal/source"
	"wengang/policy/refund"
)

// The demo end to end: a private cluster, the city and three county nodes
// on loopback, the flow from import to paid with a cross-county duplicate,
// an objection, a returned payment and its re-issue. Its screening figures
// are what the rules give for the files it exports, and its money
// reconciles.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	if _, err := os.Stat("/usr/lib/postgresql"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("no PostgreSQL binaries (make test installs them)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	export := t.TempDir()
	var out bytes.Buffer
	counties := []string{"371502", "371521", "371526"}
	sum, err := Run(ctx, Options{Counties: counties, Units: 60, Seed: 7, ExportDir: export, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, c := range counties {
		got := sum.Counties[c]
		if got == nil {
			t.Fatalf("no summary for %s", c)
		}
		read, err := source.ReadDir(filepath.Join(export, c), source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := refund.Screen(&read.Dataset, refund.DefaultParams(), asOf)
		if err != nil {
			t.Fatal(err)
		}
		var want CountySummary
		want.Units = len(rs)
		for _, r := range rs {
			switch r.Decision {
			case refund.Eligible:
				want.Eligible++
				want.EligibleRefundFen += r.RefundFen
			case refund.Hold:
				want.Hold++
			case refund.Ineligible:
				want.Ineligible++
			}
		}
		if got.Units != want.Units || got.Eligible != want.Eligible || got.Hold != want.Hold || got.Ineligible != want.Ineligible ||
			got.EligibleRefundFen != want.EligibleRefundFen {
			t.Errorf("%s: demo %+v, rules on the exported files %+v", c, *got, want)
		}
		if got.ReleasedFen == 0 || got.ReleasedFen != got.PaidFen+got.ReturnedFen+got.OutstandingFen {
			t.Errorf("%s: released %d ≠ paid %d + returned %d + outstanding %d", c, got.ReleasedFen, got.PaidFen, got.ReturnedFen, got.OutstandingFen)
		}
	}
	returned := int64(0)
	for _, c := range counties {
		returned += sum.Counties[c].ReturnedFen
	}
	if returned == 0 {
		t.Error("no payment came back: the demo must show a return and its re-issue")
	}
	t.Log(out.String())
}
