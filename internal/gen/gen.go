// Package gen makes realistic source data for demos, benchmarks and tests:
// the four files a county exports (units, contributions, accounts,
// exclusions) in the formats of DOMAIN.md, for any number of counties.
//
// The data exercises every rule of the refund policy. Most units are drawn
// at random from distributions that look like a Liaocheng county; in every
// county a catalogue of hand-made cases (the layoff test vectors of
// DOMAIN.md, a payment on the data date and one the day after, a unit on
// each exclusion list, a wrong check character, ...) takes the place of
// randomly chosen units, so that even a small dataset meets every reason
// code and every boundary.
//
// Generation is deterministic: the same Config gives the same dataset, and
// each county's units depend only on the seed and the county's code, not on
// which other counties are generated with it.
package gen

import (
	"hash/fnv"
	"math/rand/v2"
	"strings"

	"wengang/internal/fault"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// Config says what to generate.
type Config struct {
	// Counties are the county (or agency) codes to generate units for, such
	// as 371502 and 371521. The legacy code 371523 means 371503.
	Counties []string
	// Units is the number of units per county.
	Units int
	// Seed selects the dataset; the same seed gives the same data.
	Seed int64
	// PolicyYear is the policy year Y; zero means 2021.
	PolicyYear int
	// AsOf is the data date D: payments dated after it exist too. Zero
	// means April 28 of the year after PolicyYear. Contribution periods run
	// up to the month before D.
	AsOf civil.Date
}

// Defaults of Config.
const (
	DefaultPolicyYear = 2021
	maxUnits          = 5_000_000
)

// withDefaults returns c with its zero fields set to their defaults and
// legacy county codes replaced, or an error wrapping fault.ErrInvalid.
func (c Config) withDefaults() (Config, error) {
	if c.PolicyYear == 0 {
		c.PolicyYear = DefaultPolicyYear
	}
	if c.PolicyYear < civil.MinYear+2 || c.PolicyYear > civil.MaxYear-2 {
		return c, fault.New(fault.ErrInvalid, "gen: policy year %d out of range", c.PolicyYear)
	}
	if c.AsOf == 0 {
		c.AsOf = civil.MustDate(c.PolicyYear+1, 4, 28)
	}
	if _, err := civil.NewDate(c.AsOf.Year(), c.AsOf.Month(), c.AsOf.Day()); err != nil {
		return c, fault.New(fault.ErrInvalid, "gen: as-of date %d: %w", int32(c.AsOf), err)
	}
	if c.AsOf.Year() <= c.PolicyYear || c.AsOf.Year() > c.PolicyYear+2 {
		return c, fault.New(fault.ErrInvalid, "gen: as-of date %s must fall in the two years after policy year %d", c.AsOf, c.PolicyYear)
	}
	if c.Units < 0 || c.Units > maxUnits {
		return c, fault.New(fault.ErrInvalid, "gen: %d units per county: want 0 to %d", c.Units, maxUnits)
	}
	if len(c.Counties) == 0 {
		return c, fault.New(fault.ErrInvalid, "gen: no county")
	}
	counties := make([]string, len(c.Counties))
	seen := make(map[string]bool, len(c.Counties))
	for i, code := range c.Counties {
		code = strings.TrimSpace(code)
		if code == "371523" {
			code = "371503"
		}
		if !validCountyCode(code) {
			return c, fault.New(fault.ErrInvalid, "gen: county code %q: want 6 digits", code)
		}
		if seen[code] {
			return c, fault.New(fault.ErrInvalid, "gen: county %s given twice", code)
		}
		seen[code] = true
		counties[i] = code
	}
	c.Counties = counties
	return c, nil
}

func validCountyCode(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Generate returns the dataset cfg describes: each county's units in turn,
// with their contributions, accounts and exclusion entries in the same
// order. A small share of contribution, account and exclusion rows belong
// to USCCs that are not among the units (real exports carry such rows).
// It returns an error wrapping fault.ErrInvalid when cfg is not valid.
func Generate(cfg Config) (*refund.Dataset, error) {
	ds, _, err := GenerateWithCases(cfg)
	return ds, err
}

// GenerateWithCases is Generate that also returns the units of the
// catalogue, in dataset order, each with the decision and reasons that
// DOMAIN.md gives it: test vectors for the screening.
func GenerateWithCases(cfg Config) (*refund.Dataset, []Case, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	ds := &refund.Dataset{
		Units:         make([]refund.Unit, 0, cfg.Units*len(cfg.Counties)),
		Contributions: make([]refund.Contribution, 0, cfg.Units*len(cfg.Counties)*26),
		Accounts:      make([]refund.Account, 0, cfg.Units*len(cfg.Counties)),
		Exclusions:    make([]refund.Exclusion, 0, cfg.Units*len(cfg.Counties)/20),
	}
	var cases []Case
	usccs := make(map[string]struct{}, cfg.Units*len(cfg.Counties))
	for _, code := range cfg.Counties {
		g := newCountyGen(cfg, code, ds, usccs, &cases)
		g.run(cfg.Units)
	}
	return ds, cases, nil
}

// countySeed is the second word of a county's PCG state: a hash of its code,
// so that counties are independent of each other and of their order.
func countySeed(code string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(code))
	return h.Sum64()
}

func newRand(seed int64, code string) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), countySeed(code)))
}
