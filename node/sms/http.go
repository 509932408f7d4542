package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HTTPGateway adapts an SMS provider's HTTP API. Each message is POSTed as
// JSON {"id", "mobile", "text"} to URL with "Authorization: Bearer KEY" (and
// the id again as Idempotency-Key), and the provider answers:
//
//   - 2xx: accepted; the body's JSON "message_id" is the provider's id
//     (empty when the body has none);
//   - 4xx (but 408 and 429): refused for good, an ErrPermanent;
//   - 408, 429, 5xx, or no answer at all: a transient error, retried.
//
// The provider must deduplicate by id: the Sender sends a message again
// under the same id when it cannot know whether the first attempt arrived.
type HTTPGateway struct {
	URL    string
	Key    string
	Client *http.Client // nil: http.DefaultClient
}

// maxProviderBody bounds what is read of a provider's answer.
const maxProviderBody = 64 << 10

// Send posts m to the provider.
func (g *HTTPGateway) Send(ctx context.Context, m Message) (string, error) {
	body, err := json.Marshal(struct {
		ID     string `json:"id"`
		Mobile string `json:"mobile"`
		Text   string `json:"text"`
	}{m.ID, m.Mobile, m.Text})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL, bytes.NewReader(body))
	if err != nil {
		return "", Permanent(fmt.Errorf("sms: provider URL: %w", err))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+g.Key)
	req.Header.Set("Idempotency-Key", m.ID)
	client := g.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("sms: provider: %w", err)
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, maxProviderBody))
	if err != nil && res.StatusCode/100 != 2 {
		return "", fmt.Errorf("sms: provider: HTTP %d, reading the answer: %w", res.StatusCode, err)
	}
	switch code := res.StatusCode; {
	case code/100 == 2:
		var ok struct {
			MessageID string `json:"message_id"`
		}
		if len(bytes.TrimSpace(answer)) > 0 {
			if err := json.Unmarshal(answer, &ok); err != nil {
				// Accepted all the same: sending again would only be deduplicated.
				return "", nil
			}
		}
		return ok.MessageID, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code/100 != 4:
		return "", fmt.Errorf("sms: provider: HTTP %d: %s", code, snippet(answer))
	default:
		return "", Permanent(fmt.Errorf("provider refused the message: HTTP %d: %s", code, snippet(answer)))
	}
}

// snippet is the start of a provider's answer, for an error message.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	if s == "" {
		return "(no body)"
	}
	return s
}
