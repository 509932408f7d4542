package sms

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFileGatewayAppendsJSONLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sms.jsonl")
	at := time.Date(2022, 4, 25, 9, 30, 0, 0, time.UTC)
	g := &FileGateway{Path: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return at }}
	msgs := []Message{
		{ID: "371502-N1", Mobile: "13800000001", Text: "【聊城市人社局】一"},
		{ID: "371502-N2", Mobile: "13800000002", Text: "【聊城市人社局】二"},
	}
	for _, m := range msgs {
		id, err := g.Send(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if id != "file:"+m.ID {
			t.Errorf("id = %q", id)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for ; sc.Scan(); i++ {
		var line fileLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if i >= len(msgs) || line.ID != msgs[i].ID || line.Mobile != msgs[i].Mobile || line.Text != msgs[i].Text || !line.At.Equal(at) {
			t.Errorf("line %d = %+v", i+1, line)
		}
	}
	if i != len(msgs) {
		t.Errorf("%d lines, want %d", i, len(msgs))
	}
}
