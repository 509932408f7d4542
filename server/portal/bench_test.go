package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"wengang/internal/loadtest"
	"wengang/internal/pgtest"
	"wengang/policy/civil"
	"wengang/server/portal"
	"wengang/server/store"
)

// BenchmarkRound50k serves pages of a 50,000-enterprise round in process:
// "cached" repeats page 1 (a rendered page reused), "render" walks distinct
// searches so that every request filters the whole list and renders, and
// "static" serves the bytes of page 1 as the baseline of the same size.
func BenchmarkRound50k(b *testing.B) {
	db := pgtest.NewDB(b, store.Migrations)
	counties := []string{"371502", "371503", "371521", "371522", "371524", "371525", "371526", "371581"}
	if err := loadtest.Seed(context.Background(), db, loadtest.Round{ID: "R1", Start: 20220509, End: 20220513}, loadtest.Entries(50000, counties)); err != nil {
		b.Fatal(err)
	}
	h := portal.Handler(portal.Config{Store: store.New(db), Today: func() civil.Date { return 20220510 },
		Now: func() time.Time { return poNow }, CacheTTL: time.Hour})
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d", path, rec.Code)
		}
		return rec
	}
	static := get("/portal/rounds/R1").Body.Bytes()
	b.Run("static", func(b *testing.B) {
		for b.Loop() {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "text/html; charset=utf-8")
			rec.Write(static)
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			get("/portal/rounds/R1")
		}
	})
	b.Run("render", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			get(fmt.Sprintf("/portal/rounds/R1?q=%s&page=%d", "聊城", i))
		}
	})
}
