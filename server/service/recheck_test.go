package service

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"wengang/internal/fault"
	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/server/batchtest"
	"wengang/server/store"
)

func rejectionCodes(it store.Item) []store.RejectionCode {
	var out []store.RejectionCode
	for _, r := range it.Rejections {
		out = append(out, r.Code)
	}
	return out
}

func TestRecheckEvidence(t *testing.T) {
	t.Parallel()
	p := refund.DefaultParams()
	asOf := civil.MustDate(2022, 4, 28)
	tests := []struct {
		name   string
		change func(it *wengangv1.BatchItem)
		want   []store.RejectionCode
	}{
		{"good", func(*wengangv1.BatchItem) {}, nil},
		{"months out of order", func(it *wengangv1.BatchItem) {
			it.Contributions[3], it.Contributions[4] = it.Contributions[4], it.Contributions[3]
		}, []store.RejectionCode{store.RejectEvidenceMismatch}},
		{"a month twice", func(it *wengangv1.BatchItem) {
			it.Contributions[4] = proto.Clone(it.Contributions[3]).(*wengangv1.MonthlyContribution)
			batchtest.Settle(it)
		}, []store.RejectionCode{store.RejectEvidenceMismatch}},
		{"more unpaid rows than rows", func(it *wengangv1.BatchItem) {
			it.Contributions[3].UnpaidRowCount = 2
		}, []store.RejectionCode{store.RejectEvidenceMismatch}},
		{"paid amounts without a paid row", func(it *wengangv1.BatchItem) {
			it.Contributions[0].UnpaidRowCount = 1
		}, []store.RejectionCode{store.RejectEvidenceMismatch}},
		{"a month after the policy's last", func(it *wengangv1.BatchItem) {
			it.Contributions = append(it.Contributions, batchtest.Month(2022, 1, 1, 1))
		}, []store.RejectionCode{store.RejectEvidenceMismatch}},
		{"negative amount", func(it *wengangv1.BatchItem) {
			it.Contributions[2].PaidEmployeeFen = -1
			batchtest.Settle(it)
		}, []store.RejectionCode{store.RejectEvidenceMismatch}},
		{"no period", func(it *wengangv1.BatchItem) {
			it.Contributions[0].Period = nil
		}, []store.RejectionCode{store.RejectEvidenceMismatch}},
		{"unpaid months of other years do not count against the base", func(it *wengangv1.BatchItem) {
			it.Contributions = append([]*wengangv1.MonthlyContribution{{
				Period: &wengangv1.Month{Year: 2019, Month: 5}, RowCount: 1, UnpaidRowCount: 1, UnpaidFen: 5000}}, it.Contributions...)
		}, nil},
		{"a late but paid month of the year counts", func(it *wengangv1.BatchItem) {
			it.Contributions[6].LastPaidOn = &wengangv1.Date{Year: 2022, Month: 4, Day: 28}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := batchtest.Item("371502", batchtest.USCC(1))
			tt.change(it)
			bc := &wengangv1.BatchContent{County: "371502", PolicyId: p.ID, Items: []*wengangv1.BatchItem{it}}
			got := recheck(p, true, bc, asOf, it)
			if codes := slices.Compact(rejectionCodes(got)); !slices.Equal(codes, tt.want) {
				t.Fatalf("rejections %v, want %v", got.Rejections, tt.want)
			}
			if len(tt.want) == 0 && (got.RecomputedBaseFen != it.BaseFen || got.RecomputedRefundFen != it.RefundFen) {
				t.Fatalf("recomputed %d/%d, claimed %d/%d", got.RecomputedBaseFen, got.RecomputedRefundFen, it.BaseFen, it.RefundFen)
			}
			if len(got.Encoded) == 0 {
				t.Fatal("the item's encoding is not kept")
			}
		})
	}
}

func TestCursor(t *testing.T) {
	t.Parallel()
	after := map[string]int64{"371502": 12, "371521": 3}
	c := formatCursor(after)
	if c != formatCursor(maps.Clone(after)) {
		t.Fatal("equal positions encode differently")
	}
	back, err := parseCursor(c)
	if err != nil || !maps.Equal(back, after) {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	if got, err := parseCursor(""); err != nil || len(got) != 0 {
		t.Fatalf("empty cursor: %v, %v", got, err)
	}
	for _, bad := range []string{"%%%", "bm90IGpzb24", formatCursor(map[string]int64{"371502": -1}), "eyJ2IjoyLCJhZnRlciI6e319"} {
		if _, err := parseCursor(bad); !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("cursor %q: %v", bad, err)
		}
	}
}
