package sync

import (
	"fmt"
	"strings"

	"wengang/internal/protoconv"
	"wengang/node/store"
	wengangv1 "wengang/proto/wengang/v1"
)

// decisions reads a page of the city's decisions feed. A decision of an
// unspecified or unknown kind, or with an impossible date, is an error:
// the page is not applied.
func decisions(ms []*wengangv1.CityDecision) ([]store.CityDecision, error) {
	out := make([]store.CityDecision, len(ms))
	for i, m := range ms {
		d := &out[i]
		kind := store.DecisionKind(protoconv.DecisionKindKey(m.GetKind()))
		if _, known := kind.StateAfter(); !known {
			return nil, fmt.Errorf("decision %d of county %s: unknown kind %v", m.GetSequence(), m.GetCounty(), m.GetKind())
		}
		*d = store.CityDecision{
			County: m.GetCounty(), Sequence: m.GetSequence(), Kind: kind, BatchID: m.GetBatchId(), USCC: m.GetUscc(),
			Reason: m.GetReason(), ConflictID: m.GetConflictId(), RoundID: m.GetRoundId(), AmountFen: m.GetAmountFen(),
			InstructionID: m.GetInstructionId(), BankReference: m.GetBankReference(), OccurredAt: m.GetOccurredAt().AsTime(),
		}
		var err error
		if d.PublicityStart, err = protoconv.ToDate(m.GetPublicityStart()); err != nil {
			return nil, fmt.Errorf("decision %d: publicity_start: %w", m.GetSequence(), err)
		}
		if d.PublicityEnd, err = protoconv.ToDate(m.GetPublicityEnd()); err != nil {
			return nil, fmt.Errorf("decision %d: publicity_end: %w", m.GetSequence(), err)
		}
		if d.SettledOn, err = protoconv.ToDate(m.GetSettledOn()); err != nil {
			return nil, fmt.Errorf("decision %d: settled_on: %w", m.GetSequence(), err)
		}
		for _, r := range m.GetRejections() {
			rj := store.Rejection{Code: protoconv.RejectionCodeKey(r.GetCode()), Detail: r.GetDetail()}
			for _, why := range r.GetReasons() {
				rj.Reasons = append(rj.Reasons, strings.TrimPrefix(why.String(), "REASON_"))
			}
			d.Rejections = append(d.Rejections, rj)
		}
	}
	return out, nil
}
