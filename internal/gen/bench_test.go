package gen

import (
	"testing"
)

// BenchmarkGenerateWrite measures generating 10,000 units (about 240,000
// contribution rows) and writing them, reporting units per second. The
// Generate sub-benchmark is the baseline the writes compare with.
func BenchmarkGenerateWrite(b *testing.B) {
	cfg := config(10000, 1, "371502")
	b.Run("Generate", func(b *testing.B) {
		for b.Loop() {
			if _, err := Generate(cfg); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cfg.Units)*float64(b.N)/b.Elapsed().Seconds(), "units/s")
	})
	for _, c := range []struct {
		name string
		f    Format
	}{
		{"CSV", Format{}},
		{"CSV-GB18030-Chinese-Grouped", Format{Encoding: GB18030, Chinese: true, Grouping: true, Shuffle: true}},
		{"XLSX", Format{XLSX: true}},
	} {
		b.Run("GenerateAndWrite"+c.name, func(b *testing.B) {
			dir := b.TempDir()
			for b.Loop() {
				ds, err := Generate(cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := Write(dir, ds, c.f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cfg.Units)*float64(b.N)/b.Elapsed().Seconds(), "units/s")
		})
	}
}
