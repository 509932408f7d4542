package sms

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// providerCall is what the fake provider saw of one request.
type providerCall struct {
	method, auth, idempotency, contentType string
	body                                   map[string]string
}

func TestHTTPGateway(t *testing.T) {
	t.Parallel()
	msg := Message{ID: "371502-N42", Mobile: "13800000001", Text: "【聊城市人社局】您单位（某单位）符合…"}
	tests := []struct {
		name      string
		status    int
		answer    string
		wantID    string
		wantErr   bool
		permanent bool
	}{
		{name: "accepted", status: 200, answer: `{"message_id": "prov-7781"}`, wantID: "prov-7781"},
		{name: "accepted without an id", status: 202, answer: ``, wantID: ""},
		{name: "accepted, answer not JSON", status: 200, answer: `OK`, wantID: ""},
		{name: "bad number", status: 400, answer: `{"error": "invalid mobile"}`, wantErr: true, permanent: true},
		{name: "bad key", status: 401, answer: `unauthorized`, wantErr: true, permanent: true},
		{name: "too many requests", status: 429, answer: `slow down`, wantErr: true},
		{name: "request timeout", status: 408, wantErr: true},
		{name: "provider down", status: 503, answer: `maintenance`, wantErr: true},
		{name: "provider error", status: 500, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu    sync.Mutex
				calls []providerCall
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				c := providerCall{method: r.Method, auth: r.Header.Get("Authorization"), idempotency: r.Header.Get("Idempotency-Key"),
					contentType: r.Header.Get("Content-Type")}
				if err := json.Unmarshal(b, &c.body); err != nil {
					t.Errorf("request body %q: %v", b, err)
				}
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.answer)
			}))
			defer srv.Close()
			g := &HTTPGateway{URL: srv.URL + "/sms/send", Key: "k-secret", Client: srv.Client()}
			id, err := g.Send(context.Background(), msg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Send: id %q, err %v; want error %v", id, err, tt.wantErr)
			}
			if got := errors.Is(err, ErrPermanent); got != tt.permanent {
				t.Errorf("permanent = %v, want %v (err %v)", got, tt.permanent, err)
			}
			if id != tt.wantID {
				t.Errorf("id = %q, want %q", id, tt.wantID)
			}
			if len(calls) != 1 {
				t.Fatalf("%d calls to the provider, want 1", len(calls))
			}
			c := calls[0]
			if c.method != http.MethodPost || c.auth != "Bearer k-secret" || c.idempotency != msg.ID || !strings.HasPrefix(c.contentType, "application/json") {
				t.Errorf("request: %+v", c)
			}
			if want := map[string]string{"id": msg.ID, "mobile": msg.Mobile, "text": msg.Text}; !equalMaps(c.body, want) {
				t.Errorf("body = %v, want %v", c.body, want)
			}
		})
	}
}

func TestHTTPGatewayNetworkErrorIsTransient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	_, err := (&HTTPGateway{URL: url, Key: "k"}).Send(context.Background(), Message{ID: "x-N1", Mobile: "1", Text: "t"})
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("err = %v, want a transient error", err)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
