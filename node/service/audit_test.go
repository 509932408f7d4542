package service

import (
	"context"
	"strings"
	"testing"
	"time"
	"wengang/internal/audit"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	wengangv1 "wengang/proto/wengang/v1"
)

func TestAuditChainOfTheWholeFlow(t *testing.T) {
	t.Parallel()
	r := ncScreenCases(t) // four imports, a seal and a screening
	ctx := context.Background()
	rv := r.n.reviewer()
	start := time.Now()
	if _, err := rv.Review.ExcludeUnit(ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: ncCounty, ScreeningId: r.sc.GetScreeningId(),
		Uscc: r.unit(t, "clean"), Reason: "理由", IdempotencyKey: "a"})); err != nil {
		t.Fatal(err)
	}
	if _, err := r.resolve(rv, r.unit(t, "size unknown"), "b", ncSizeFact(wengangv1.SizeClass_SIZE_CLASS_SMALL)); err != nil {
		t.Fatal(err)
	}
	// Refused requests leave no entry.
	r.resolve(r.n.clerk(), r.unit(t, "size unknown and no account"), "c", ncSizeFact(wengangv1.SizeClass_SIZE_CLASS_SMALL))

	list := func(req *wengangv1.ListAuditEntriesRequest) []*wengangv1.AuditEntry {
		t.Helper()
		req.Domain = ncCounty
		var out []*wengangv1.AuditEntry
		for {
			res, err := rv.Audit.ListAuditEntries(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res.Msg.GetEntries()...)
			if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
				return out
			}
		}
	}
	all := list(&wengangv1.ListAuditEntriesRequest{PageSize: 3})
	var actions []string
	for i, e := range all {
		actions = append(actions, e.GetAction()[strings.LastIndex(e.GetAction(), "/")+1:])
		if e.GetSeq() != int64(i+1) || e.GetHash() == "" || (i == 0) != (e.GetPrevHash() == audit.Genesis) || (i > 0 && e.GetPrevHash() != all[i-1].GetHash()) {
			t.Errorf("entry %d: %v", i, e)
		}
	}
	if strings.Join(actions, ",") != "Import,Import,Import,Import,RunScreening,RunScreening,ExcludeUnit,ResolveHold" {
		t.Errorf("actions %v", actions)
	}
	if all[4].GetObjectType() != "dataset" || all[5].GetObjectType() != "screening" || all[6].GetObjectType() != "screening_result" ||
		all[6].GetObjectId() != r.sc.GetScreeningId()+"/"+r.unit(t, "clean") || all[6].GetActor().GetSubject() != "李复核 (tok-reviewer)" ||
		all[6].GetActor().GetKind() != wengangv1.ActorKind_ACTOR_KIND_PERSON || !strings.Contains(all[6].GetDetail(), "理由") {
		t.Errorf("entries %v", all[4:])
	}
	for _, tc := range []struct {
		name string
		req  *wengangv1.ListAuditEntriesRequest
		want int
	}{
		{"by object type", &wengangv1.ListAuditEntriesRequest{ObjectType: "screening_result"}, 2},
		{"by object", &wengangv1.ListAuditEntriesRequest{ObjectType: "screening_result", ObjectId: all[7].GetObjectId()}, 1},
		{"by actor", &wengangv1.ListAuditEntriesRequest{ActorSubject: "tok-reviewer"}, 2},
		{"by actor, the clerk", &wengangv1.ListAuditEntriesRequest{ActorSubject: "tok-clerk"}, 6},
		{"after a sequence number", &wengangv1.ListAuditEntriesRequest{AfterSeq: 5}, 3},
		{"from an instant", &wengangv1.ListAuditEntriesRequest{From: timestamppb.New(start)}, 2},
		{"before an instant", &wengangv1.ListAuditEntriesRequest{To: timestamppb.New(start)}, 6},
	} {
		if got := list(tc.req); len(got) != tc.want {
			t.Errorf("%s: %d entries, want %d", tc.name, len(got), tc.want)
		}
	}

	verify := func(from, to int64) *wengangv1.VerifyAuditChainResponse {
		t.Helper()
		res, err := rv.Audit.VerifyAuditChain(ctx, connect.NewRequest(&wengangv1.VerifyAuditChainRequest{Domain: ncCounty, FromSeq: from, ToSeq: to}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg
	}
	if v := verify(0, 0); !v.GetOk() || v.GetCheckedCount() != 8 || v.GetLastSeq() != 8 || v.GetLastHash() != all[7].GetHash() {
		t.Errorf("verify: %v", v)
	}
	if v := verify(3, 5); !v.GetOk() || v.GetCheckedCount() != 3 || v.GetLastSeq() != 5 {
		t.Errorf("verify 3..5: %v", v)
	}
	// Another county's chain is its own, and empty.
	if res, err := rv.Audit.VerifyAuditChain(ctx, connect.NewRequest(&wengangv1.VerifyAuditChainRequest{Domain: ncOtherCounty})); err != nil ||
		!res.Msg.GetOk() || res.Msg.GetCheckedCount() != 0 {
		t.Errorf("verify %s: %v, %v", ncOtherCounty, res, err)
	}
	_, err := rv.Audit.ListAuditEntries(ctx, connect.NewRequest(&wengangv1.ListAuditEntriesRequest{}))
	ncWantCode(t, err, connect.CodeInvalidArgument)
	_, err = rv.Audit.VerifyAuditChain(ctx, connect.NewRequest(&wengangv1.VerifyAuditChainRequest{Domain: "371526"}))
	ncWantCode(t, err, connect.CodeNotFound)

	// Tampering with an entry breaks the chain there.
	if _, err := r.n.pool.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
		UPDATE audit_log SET detail = '{}' WHERE seq = 7;
		ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only`); err != nil {
		t.Fatal(err)
	}
	if v := verify(0, 0); v.GetOk() || v.GetFirstBadSeq() != 7 || v.GetCheckedCount() != 6 || v.GetProblem() == "" {
		t.Errorf("verify after tampering: %v", v)
	}
	if v := verify(8, 0); !v.GetOk() {
		t.Errorf("the range after the tampered entry: %v", v)
	}
}
