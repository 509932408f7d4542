package protoconv

import (
	"testing"

	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
)

func TestReasonsRoundTrip(t *testing.T) {
	t.Parallel()
	var all refund.Reasons
	for _, r := range refund.AllReasons() {
		all = all.With(r)
		// Every domain reason has a wire value of the same name.
		w := Reasons(refund.Reasons(0).With(r))
		if len(w) != 1 || w[0].String() != "REASON_"+r.String() {
			t.Errorf("reason %v maps to %v", r, w)
		}
	}
	back, err := ToReasons(Reasons(all))
	if err != nil || back != all {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	if _, err := ToReasons([]wengangv1.Reason{wengangv1.Reason_REASON_UNSPECIFIED}); err == nil {
		t.Fatal("UNSPECIFIED accepted as a reason")
	}
}

func TestEnumsShareNames(t *testing.T) {
	t.Parallel()
	for d := refund.Eligible; d <= refund.Ineligible; d++ {
		if got := Decision(d).String(); got != "DECISION_"+upper(d.String()) {
			t.Errorf("decision %v → %v", d, got)
		}
	}
	for s := refund.SizeLarge; s <= refund.SizeMicro; s++ {
		if got := Size(s).String(); got != "SIZE_CLASS_"+upper(s.String()) {
			t.Errorf("size %v → %v", s, got)
		}
	}
	for s := refund.StatusActive; s <= refund.StatusRevoked; s++ {
		if got := Status(s).String(); got != "REGISTRATION_STATUS_"+upper(s.String()) {
			t.Errorf("status %v → %v", s, got)
		}
	}
	a := Account(refund.Account{Kind: refund.AccountSocialInsurance, AccountNo: "1"})
	if a.GetKind() != wengangv1.AccountKind_ACCOUNT_KIND_SOCIAL_INSURANCE {
		t.Errorf("account kind %v", a.GetKind())
	}
}

func TestDates(t *testing.T) {
	t.Parallel()
	d := civil.MustDate(2022, 4, 28)
	if back, err := ToDate(Date(d)); err != nil || back != d {
		t.Fatalf("date round trip: %v %v", back, err)
	}
	if _, err := ToDate(&wengangv1.Date{Year: 2022, Month: 2, Day: 30}); err == nil {
		t.Fatal("2022-02-30 accepted")
	}
	if m, err := ToMonth(Month(202112)); err != nil || m != 202112 {
		t.Fatalf("month round trip: %v %v", m, err)
	}
	p := Params(refund.DefaultParams())
	if p.GetRateBp() != 9000 || p.GetMonthsThrough().GetMonth() != 12 || p.GetSmallBy() != wengangv1.SmallBy_SMALL_BY_YEAR_END {
		t.Fatalf("params %v", p)
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func TestStateKeys(t *testing.T) {
	t.Parallel()
	for v := range wengangv1.CityDecisionKind_name {
		k := wengangv1.CityDecisionKind(v)
		if k == 0 {
			continue
		}
		if got := DecisionKind(DecisionKindKey(k)); got != k {
			t.Errorf("decision kind %v → %q → %v", k, DecisionKindKey(k), got)
		}
	}
	for v := range wengangv1.RejectionCode_name {
		c := wengangv1.RejectionCode(v)
		if got := RejectionCode(RejectionCodeKey(c)); got != c {
			t.Errorf("rejection code %v → %v", c, got)
		}
	}
	if ItemState("in_publicity") != wengangv1.ItemState_ITEM_STATE_IN_PUBLICITY || ItemState("nonsense") != 0 {
		t.Error("item state keys")
	}
	if DecisionKindKey(wengangv1.CityDecisionKind(99)) != "" {
		t.Error("an unnamed decision kind has a key")
	}
}
