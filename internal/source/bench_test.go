package source_test

import (
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"wengang/internal/gen"
	"wengang/internal/results"
	"wengang/internal/source"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// benchUnits is the size the foundation issue asks to be measured: 100,000
// units with about 2.4 million contribution rows.
const benchUnits = 100_000

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

// benchFiles writes the generated files once per process into a temporary
// directory that outlives the benchmarks of one run.
func benchFiles(b *testing.B) string {
	b.Helper()
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "wengang-bench-")
		if benchErr != nil {
			return
		}
		counties := []string{"371502", "371503", "371521", "371522"}
		var ds *refund.Dataset
		ds, benchErr = gen.Generate(gen.Config{Counties: counties, Units: benchUnits / len(counties), Seed: 7,
			PolicyYear: 2021, AsOf: civil.MustDate(2022, 4, 28)})
		if benchErr != nil {
			return
		}
		benchErr = gen.Write(benchDir, ds, gen.Format{Encoding: gen.UTF8})
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchDir
}

// BenchmarkRead is the baseline: reading and parsing the four files.
func BenchmarkRead(b *testing.B) {
	dir := benchFiles(b)
	var units int
	b.ReportAllocs()
	for b.Loop() {
		r, err := source.ReadDir(dir, source.Options{})
		if err != nil {
			b.Fatal(err)
		}
		units = len(r.Dataset.Units)
	}
	b.ReportMetric(float64(units)*float64(b.N)/b.Elapsed().Seconds(), "units/s")
}

// BenchmarkScreen is the whole job of `wengang screen --dir`: read and
// parse, screen every unit, write results.csv. Compare with BenchmarkRead
// (benchstat), or read its x-read metric: the job's time over the reading
// time, both measured in each iteration. Target: at most 1.5.
func BenchmarkScreen(b *testing.B) {
	dir := benchFiles(b)
	params := refund.DefaultParams()
	asOf := civil.MustDate(2022, 4, 28)
	var units int
	var readTime, total time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		r, err := source.ReadDir(dir, source.Options{})
		if err != nil {
			b.Fatal(err)
		}
		readTime += time.Since(start)
		rs, err := refund.Screen(&r.Dataset, params, asOf)
		if err != nil {
			b.Fatal(err)
		}
		if err := results.WriteCSV(io.Discard, rs); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		units = len(rs)
	}
	b.ReportMetric(float64(units)*float64(b.N)/b.Elapsed().Seconds(), "units/s")
	b.ReportMetric(float64(total)/float64(readTime), "x-read")
}

// TestMain removes the generated files after the benchmarks.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(filepath.Clean(benchDir))
	}
	os.Exit(code)
}
