package authn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"wengang/internal/devcert"
	"wengang/internal/fault"
	"wengang/internal/rpc"
	"wengang/policy/access"
)

// Lookuper finds the principal of a bearer token: *Tokens.
type Lookuper interface {
	Lookup(ctx context.Context, token string) (access.Principal, error)
}

// Interceptor is the one access check of a server, on every RPC, before
// any handler runs:
//
//  1. Authenticate. An "Authorization: Bearer TOKEN" header is looked up
//     in tokens; else a client certificate verified by the server's TLS
//     configuration (rpc.TLSState; tls.VerifyClientCertIfGiven) makes a
//     node principal for the counties its SAN URIs name (devcert.Counties);
//     else the caller is access.Anonymous. A bad token, a certificate that
//     was not verified or names no county is Unauthenticated.
//  2. Authorize with enforcer.Authorize: the procedure and the request (for
//     a client or bidirectional stream, its first message, received here
//     before the handler sees it; for a server stream, its request). A
//     refusal is PermissionDenied, or Unauthenticated for a caller without
//     credentials; a request that names no county where it must is
//     InvalidArgument.
//  3. Run the handler with the principal in its context
//     (access.PrincipalFrom).
//
// Errors are Connect errors, made by rpc.Error. On the client side of a
// connection the interceptor does nothing.
func Interceptor(tokens Lookuper, enforcer *access.Enforcer, log *slog.Logger) connect.Interceptor {
	return &interceptor{tokens: tokens, enforcer: enforcer, log: log}
}

type interceptor struct {
	tokens   Lookuper
	enforcer *access.Enforcer
	log      *slog.Logger
}

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		procedure := req.Spec().Procedure
		p, err := i.authenticate(ctx, req.Header())
		if err != nil {
			return nil, i.refuse(ctx, procedure, p, err)
		}
		msg, ok := req.Any().(proto.Message)
		if !ok {
			return nil, i.refuse(ctx, procedure, p, fmt.Errorf("authn: %s: request %T is not a protobuf message", procedure, req.Any()))
		}
		if err := i.enforcer.Authorize(ctx, p, procedure, msg); err != nil {
			return nil, i.refuse(ctx, procedure, p, err)
		}
		return next(access.WithPrincipal(ctx, p), req)
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		procedure := conn.Spec().Procedure
		p, err := i.authenticate(ctx, conn.RequestHeader())
		if err != nil {
			return i.refuse(ctx, procedure, p, err)
		}
		first, err := newInput(conn.Spec())
		if err != nil {
			return i.refuse(ctx, procedure, p, err)
		}
		// Every stream a client opens starts with a message from it (a
		// server stream's request, a client stream's first part): receive
		// it, and authorize it before the handler sees anything.
		primed := &primedConn{StreamingHandlerConn: conn, first: first}
		switch err := conn.Receive(first); {
		case errors.Is(err, io.EOF):
			primed.eof = true // judged as an empty request
		case err != nil:
			return err
		}
		if err := i.enforcer.Authorize(ctx, p, procedure, first); err != nil {
			return i.refuse(ctx, procedure, p, err)
		}
		return next(access.WithPrincipal(ctx, p), primed)
	}
}

// authenticate returns the caller of a request; see Interceptor. On error
// the principal returned is the one presumed for messages.
func (i *interceptor) authenticate(ctx context.Context, h http.Header) (access.Principal, error) {
	if values := h.Values("Authorization"); len(values) > 0 {
		presumed := access.Principal{Kind: access.KindPerson, Subject: "bearer token"}
		if len(values) > 1 {
			return presumed, fault.New(fault.ErrUnauthenticated, "more than one Authorization header")
		}
		scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return presumed, fault.New(fault.ErrUnauthenticated, `Authorization: want "Bearer TOKEN" (需要 Bearer 令牌)`)
		}
		p, err := i.tokens.Lookup(ctx, strings.TrimSpace(token))
		if err != nil {
			return presumed, err
		}
		return p, nil
	}
	if st := rpc.TLSState(ctx); st != nil && len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		presumed := access.Principal{Kind: access.KindNode, Subject: leaf.Subject.CommonName, Role: access.RoleNode}
		if len(st.VerifiedChains) == 0 {
			return presumed, fault.New(fault.ErrUnauthenticated, "client certificate %q is not verified by this server's CA (客户端证书未通过验证)", leaf.Subject.CommonName)
		}
		counties := devcert.Counties(leaf)
		if len(counties) == 0 {
			return presumed, fault.New(fault.ErrUnauthenticated, "client certificate %q names no county (%sCODE) (证书未载明县区)", leaf.Subject.CommonName, devcert.CountyURIPrefix)
		}
		presumed.Name, presumed.Counties = leaf.Subject.CommonName, counties
		return presumed, nil
	}
	return access.Anonymous(), nil
}

// refuse logs why a request was refused and returns the error the client
// sees. A caller without credentials who is refused is told to
// authenticate.
func (i *interceptor) refuse(ctx context.Context, procedure string, p access.Principal, err error) error {
	if p.Kind == access.KindAnonymous && fault.Kind(err) != nil {
		err = fault.New(fault.ErrUnauthenticated, "%s needs credentials: a bearer token or a client certificate (需要身份认证)", procedure)
	}
	if kind := fault.Kind(err); kind != nil {
		i.log.LogAttrs(ctx, slog.LevelInfo, "request refused", slog.String("procedure", procedure),
			slog.String("caller", p.String()), slog.String("reason", err.Error()))
	}
	return rpc.Error(ctx, i.log, procedure, err)
}

// newInput returns an empty request message of the procedure's input type,
// from the method descriptor the generated handler registers
// (connect.WithSchema).
func newInput(spec connect.Spec) (proto.Message, error) {
	md, ok := spec.Schema.(protoreflect.MethodDescriptor)
	if !ok {
		return nil, fmt.Errorf("authn: %s has no method descriptor (connect.WithSchema); cannot authorize its stream", spec.Procedure)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		return nil, fmt.Errorf("authn: %s: %w", spec.Procedure, err)
	}
	return mt.New().Interface(), nil
}

// primedConn hands the handler the first message, already received and
// authorized, then the rest of the stream.
type primedConn struct {
	connect.StreamingHandlerConn
	first proto.Message
	eof   bool // the client sent nothing
	used  bool
}

func (c *primedConn) Receive(msg any) error {
	if c.used {
		return c.StreamingHandlerConn.Receive(msg)
	}
	c.used = true
	if c.eof {
		return io.EOF
	}
	dst, ok := msg.(proto.Message)
	if !ok || dst.ProtoReflect().Descriptor() != c.first.ProtoReflect().Descriptor() {
		return fmt.Errorf("authn: stream message %T, want %T", msg, c.first)
	}
	proto.Reset(dst)
	proto.Merge(dst, c.first)
	return nil
}
