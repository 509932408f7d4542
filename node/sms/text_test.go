package sms

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestNoticeTextGolden(t *testing.T) {
	t.Parallel()
	notices := []Notice{
		{Signature: DefaultSignature, UnitName: "聊城市东昌府区鲁西餐饮有限公司", PlanYear: 2022, RefundFen: 450004, Phone: "0635-8241234"},
		{Signature: DefaultSignature, UnitName: "临清市运河书店", PlanYear: 2022, RefundFen: 1, Phone: "0635-2321001"},
		{Signature: DefaultSignature, UnitName: "阳谷县景阳冈酒业（小微）", PlanYear: 2022, RefundFen: 1111110, Phone: "0635-6212345"},
	}
	var b strings.Builder
	for _, n := range notices {
		text, err := n.Text()
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(text + "\n")
	}
	path := filepath.Join("testdata", "notice.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("notice texts differ from %s (run with -update after checking):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestNoticeTextRefusesIncompleteNotices(t *testing.T) {
	t.Parallel()
	full := Notice{Signature: DefaultSignature, UnitName: "某单位", PlanYear: 2022, RefundFen: 100, Phone: "0635-8241234"}
	for name, edit := range map[string]func(*Notice){
		"no signature": func(n *Notice) { n.Signature = "" },
		"no name":      func(n *Notice) { n.UnitName = "" },
		"no year":      func(n *Notice) { n.PlanYear = 0 },
		"no phone":     func(n *Notice) { n.Phone = "" },
		"zero refund":  func(n *Notice) { n.RefundFen = 0 },
		"negative":     func(n *Notice) { n.RefundFen = -5 },
	} {
		t.Run(name, func(t *testing.T) {
			n := full
			edit(&n)
			if text, err := n.Text(); err == nil {
				t.Errorf("Text() = %q, want an error", text)
			}
		})
	}
	if _, err := full.Text(); err != nil {
		t.Errorf("the full notice: %v", err)
	}
}
