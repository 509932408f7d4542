// Package auditrpc serves the AuditService of the node and of the city over
// their audit logs (internal/audit): list a domain's entries, verify its
// chain. Each process says which domains it keeps.
package auditrpc

import (
	"context"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/audit"
	"wengang/internal/rpc"
	"wengang/policy/access"
	wengangv1 "wengang/proto/wengang/v1"
)

// Service implements wengangv1connect.AuditServiceHandler.
type Service struct {
	// Keeps refuses a domain whose log this process does not keep (a
	// node: a county it serves; the city: "city").
	Keeps func(domain string) error
	// List and Verify read the process's log (audit.List, audit.Verify
	// over its database).
	List   func(ctx context.Context, f audit.Filter) ([]audit.Entry, error)
	Verify func(ctx context.Context, domain string, fromSeq, toSeq int64) (audit.Verification, error)
}

// ListAuditEntries lists one domain's audit entries in sequence order,
// filtered by object, actor and time, a page at a time.
func (s *Service) ListAuditEntries(ctx context.Context, req *connect.Request[wengangv1.ListAuditEntriesRequest]) (*connect.Response[wengangv1.ListAuditEntriesResponse], error) {
	m := req.Msg
	var bad rpc.Fields
	domain := strings.TrimSpace(m.GetDomain())
	if domain == "" {
		bad.Add("domain", "required: \"city\" or a county code")
	}
	size := rpc.PageSize(&bad, m.GetPageSize(), 100)
	f := audit.Filter{Domain: domain, AfterSeq: m.GetAfterSeq(), ObjectType: m.GetObjectType(), ObjectID: m.GetObjectId(),
		Subject: m.GetActorSubject(), Limit: size + 1}
	if f.AfterSeq < 0 {
		bad.Add("after_seq", "must not be negative")
	}
	if t := m.GetFrom(); t != nil {
		if err := t.CheckValid(); err != nil {
			bad.Add("from", "%v", err)
		}
		f.From = t.AsTime()
	}
	if t := m.GetTo(); t != nil {
		if err := t.CheckValid(); err != nil {
			bad.Add("to", "%v", err)
		}
		f.To = t.AsTime()
	}
	if tok := m.GetPageToken(); tok != "" {
		v, ok := rpc.ReadPageToken("audit/"+domain, tok)
		seq, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || seq <= 0 {
			bad.Add("page_token", "not a page token of this list")
		}
		f.AfterSeq = max(f.AfterSeq, seq)
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	if err := s.Keeps(domain); err != nil {
		return nil, err
	}
	es, err := s.List(ctx, f)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListAuditEntriesResponse{}
	if len(es) > size {
		es = es[:size]
		res.NextPageToken = rpc.PageToken("audit/"+domain, strconv.FormatInt(es[size-1].Seq, 10))
	}
	for _, e := range es {
		res.Entries = append(res.Entries, auditEntryMessage(e))
	}
	return connect.NewResponse(res), nil
}

// VerifyAuditChain checks a range of one domain's chain and reports the
// first break; a broken chain is an answer, not an error.
func (s *Service) VerifyAuditChain(ctx context.Context, req *connect.Request[wengangv1.VerifyAuditChainRequest]) (*connect.Response[wengangv1.VerifyAuditChainResponse], error) {
	m := req.Msg
	var bad rpc.Fields
	domain := strings.TrimSpace(m.GetDomain())
	if domain == "" {
		bad.Add("domain", "required: \"city\" or a county code")
	}
	if m.GetFromSeq() < 0 {
		bad.Add("from_seq", "must not be negative")
	}
	if m.GetToSeq() < 0 || (m.GetToSeq() > 0 && m.GetToSeq() < m.GetFromSeq()) {
		bad.Add("to_seq", "must be 0 or at least from_seq")
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	if err := s.Keeps(domain); err != nil {
		return nil, err
	}
	c, err := s.Verify(ctx, domain, m.GetFromSeq(), m.GetToSeq())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.VerifyAuditChainResponse{Ok: c.OK, CheckedCount: c.Checked, LastSeq: c.LastSeq,
		LastHash: c.LastHash, FirstBadSeq: c.BadSeq, Problem: c.Problem}), nil
}

// auditActorKinds maps the kinds of callers to their wire values.
var auditActorKinds = map[access.Kind]wengangv1.ActorKind{
	access.KindPerson:  wengangv1.ActorKind_ACTOR_KIND_PERSON,
	access.KindFinance: wengangv1.ActorKind_ACTOR_KIND_FINANCE_SYSTEM,
	access.KindNode:    wengangv1.ActorKind_ACTOR_KIND_NODE,
	access.KindSystem:  wengangv1.ActorKind_ACTOR_KIND_SYSTEM,
}

// auditEntryMessage returns an entry as a message.
func auditEntryMessage(e audit.Entry) *wengangv1.AuditEntry {
	return &wengangv1.AuditEntry{
		Domain: e.Domain, Seq: e.Seq, At: timestamppb.New(e.At),
		Actor:  &wengangv1.AuditActor{Kind: auditActorKinds[e.Actor.Kind], Subject: e.Actor.Subject, Role: e.Actor.Role},
		Action: e.Action, ObjectType: e.ObjectType, ObjectId: e.ObjectID, Detail: e.Detail,
		PrevHash: e.PrevHash, Hash: e.Hash,
	}
}
