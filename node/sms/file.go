package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// FileGateway is a gateway for development and demos: it sends nothing,
// but appends each message as one JSON line to a file and logs it. It
// accepts every message; its message id is "file:" and the message's id.
type FileGateway struct {
	Path string
	Log  *slog.Logger     // nil: no log
	Now  func() time.Time // nil: time.Now

	mu sync.Mutex
}

// fileLine is one line of a FileGateway's file.
type fileLine struct {
	ID     string    `json:"id"`
	Mobile string    `json:"mobile"`
	Text   string    `json:"text"`
	At     time.Time `json:"at"`
}

// Send appends m to the file and logs it.
func (g *FileGateway) Send(ctx context.Context, m Message) (string, error) {
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	line, err := json.Marshal(fileLine{ID: m.ID, Mobile: m.Mobile, Text: m.Text, At: now().UTC()})
	if err != nil {
		return "", err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	f, err := os.OpenFile(g.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("sms: file gateway: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("sms: file gateway: %w", err)
	}
	if g.Log != nil {
		g.Log.LogAttrs(ctx, slog.LevelInfo, "sms (file gateway)", slog.String("id", m.ID), slog.String("mobile", m.Mobile), slog.String("text", m.Text))
	}
	return "file:" + m.ID, nil
}
