// Package county knows the counties and agencies (参保地) whose units
// Wengang screens: their codes, their Chinese names and the legacy codes
// that still appear in source data.
package county

import (
	"fmt"
	"strings"
)

// County is one tenant: a county-level division of GB/T 2260, or an agency
// with a configured code (a development zone runs its own agency and has
// no GB/T 2260 code).
type County struct {
	Code string
	Name string
}

// Liaocheng returns the counties and agencies of Liaocheng, Shandong. The
// three zones' codes are the agency codes configured for them; GB/T 2260
// gives them none.
func Liaocheng() []County {
	return []County{
		{"371502", "东昌府区"},
		{"371503", "茌平区"},
		{"371521", "阳谷县"},
		{"371522", "莘县"},
		{"371524", "东阿县"},
		{"371525", "冠县"},
		{"371526", "高唐县"},
		{"371581", "临清市"},
		{"371571", "聊城经济技术开发区"},
		{"371572", "聊城高新技术产业开发区"},
		{"371573", "江北水城旅游度假区"},
	}
}

// legacy maps codes retired by boundary changes to the code that replaced
// them: 茌平县 became 茌平区 in 2019.
var legacy = map[string]string{"371523": "371503"}

// Registry resolves the county column of source files.
type Registry struct {
	byCode map[string]County
	byName map[string]County
}

// NewRegistry returns a registry of cs.
func NewRegistry(cs []County) *Registry {
	r := &Registry{byCode: make(map[string]County), byName: make(map[string]County)}
	for _, c := range cs {
		r.byCode[c.Code] = c
		r.byName[c.Name] = c
	}
	return r
}

// Normalize returns the code of a county written as a code, a legacy code
// or a Chinese name. A six-digit code the registry does not know is taken
// as it is (another county's data is for the caller to refuse); anything
// else is an error.
func (r *Registry) Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if to, ok := legacy[s]; ok {
		return to, nil
	}
	if _, ok := r.byCode[s]; ok {
		return s, nil
	}
	if c, ok := r.byName[s]; ok {
		return c.Code, nil
	}
	if c, ok := r.byName[strings.TrimPrefix(s, "聊城市")]; ok {
		return c.Code, nil
	}
	if len(s) == 6 && strings.Trim(s, "0123456789") == "" {
		return s, nil
	}
	return "", fmt.Errorf("%q is not a county code or name", s)
}

// Name returns the Chinese name of a known code, or "".
func (r *Registry) Name(code string) string { return r.byCode[code].Name }

// Known reports whether code is one of the registry's counties.
func (r *Registry) Known(code string) bool {
	_, ok := r.byCode[code]
	return ok
}
