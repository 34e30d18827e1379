package names

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckAccepts(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"ascii", "web1", "web1"},
		{"single inner spaces", "web 1 a", "web 1 a"},
		{"the punctuation names allow", "db-2.example.com_a@b+c:d", "db-2.example.com_a@b+c:d"},
		{"case is kept", "Web", "Web"},
		{"precomposed é (NFC)", "caf\u00e9", "caf\u00e9"},
		{"e and a combining acute (NFD) is stored as NFC", "cafe\u0301", "caf\u00e9"},
		{"the Kelvin sign is K in NFC", "\u212Aelvin", "Kelvin"},
		{"Latin with diacritics", "Ünïcödé-ışık", "Ünïcödé-ışık"},
		{"Cyrillic with letters that look like no Latin one", "сервер-1", "сервер-1"},
		{"Greek", "Ελλάδα", "Ελλάδα"},
		{"Latin with Katakana", "web サーバー", "web サーバー"},
		{"Han and Hiragana", "東京のサーバ", "東京のサーバ"},
		{"Latin with Hangul", "db 서버", "db 서버"},
		{"digits only", "2024", "2024"},
		{"100 characters", strings.Repeat("a", 100), strings.Repeat("a", 100)},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Check(c.in)
			if err != nil || got != c.want {
				t.Fatalf("Check(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

func TestCheckRefuses(t *testing.T) {
	for _, c := range []struct{ name, in, reason string }{
		{"empty", "", "it is empty"},
		{"too long", strings.Repeat("a", 101), "101 characters long"},
		{"trailing space", "web ", "it ends with a space"},
		{"leading space", " web", "it starts with a space"},
		{"two spaces", "web  1", "two spaces in a row"},
		{"no-break space", "web\u00a01", "U+00A0, a space other than the ordinary one"},
		{"trailing no-break space", "web\u00a0", "U+00A0, a space other than the ordinary one"},
		{"ideographic space", "web\u30001", "U+3000, a space other than the ordinary one"},
		{"zero-width space", "we\u200bb", "U+200B, an invisible formatting character"},
		{"zero-width joiner", "web\u200d", "U+200D, an invisible formatting character"},
		{"right-to-left override", "web\u202e1", "U+202E, an invisible formatting character"},
		{"soft hyphen", "web\u00ad1", "U+00AD, an invisible formatting character"},
		{"Hangul filler, an invisible letter", "web\u3164", "U+3164, an invisible formatting character"},
		{"variation selector", "web\ufe0f", "U+FE0F, an invisible formatting character"},
		{"NUL", "web\x00", "the control character U+0000"},
		{"newline", "web\n1", "the control character U+000A"},
		{"a lone combining mark", "\u0301web", "U+0301, a combining mark"},
		{"a combining mark that composes with nothing", "wq\u0308", "U+0308, a combining mark"},
		{"Cyrillic а in a Latin name", "vm-\u0430", `it mixes Latin and Cyrillic letters ('а' (U+0430) is Cyrillic)`},
		{"Greek ο in a Latin name", "l\u03bfgs", "it mixes Latin and Greek letters"},
		{"Arabic-Indic digit in a Latin name", "web\u0661", "it mixes Latin and Arabic letters"},
		{"Hangul with Hiragana", "서버の", "it mixes Hangul and Hiragana letters"},
		{"Cyrillic that reads as Latin", "рау", `its Cyrillic letters all pass for Latin ones (it reads as "pay")`},
		{"Cyrillic capitals that read as Latin", "ВЕТ-1", `(it reads as "BET-1")`},
		{"Greek that reads as Latin", "ΑΒΕ", `its Greek letters all pass for Latin ones (it reads as "ABE")`},
		{"fullwidth letters", "ｗｅｂ", `a compatibility form of "w": write "w" instead`},
		{"fullwidth digit", "web１", `a compatibility form of "1"`},
		{"ligature", "\ufb01le", `a compatibility form of "fi": write "fi" instead`},
		{"superscript", "x\u00b2", `a compatibility form of "2"`},
		{"phonetic script g", "\u0261it", `a phonetic letter that passes for "g"`},
		{"small capital o", "d\u1d0fc", `a phonetic letter that passes for "o"`},
		{"glottal stop, which passes for a question mark", "web\u0294", `passes for "?"`},
		{"slash", "a/b", "'/' (U+002F), which names may not hold"},
		{"glob star", "web*", "which names may not hold"},
		{"starts with punctuation", "-web", "it starts with '-' (U+002D); a name starts with a letter or digit"},
		{"not UTF-8", "web\xff", "not valid UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Check(c.in)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Check(%q) = %q, %v; want an *Error", c.in, got, err)
			}
			if !strings.Contains(e.Reason, c.reason) {
				t.Fatalf("Check(%q): %q, want it to say %q", c.in, e.Reason, c.reason)
			}
		})
	}
}

// Names that look alike are one name, or all but one are refused: a pair
// that looks the same never passes as two names.
func TestLookalikesDoNotPassAsTwoNames(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"NFC and NFD é", "caf\u00e9", "cafe\u0301"},
		{"trailing space", "web", "web "},
		{"no-break space", "web 1", "web\u00a01"},
		{"zero-width space", "web", "w\u200beb"},
		{"Cyrillic а", "vm-a", "vm-\u0430"},
		{"whole-script Cyrillic", "pay", "рау"},
		{"fullwidth", "web", "ｗｅｂ"},
		{"Kelvin sign", "Kelvin", "\u212Aelvin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, errA := Check(c.a)
			b, errB := Check(c.b)
			if errA == nil && errB == nil && a != b {
				t.Fatalf("%q and %q both pass, as the distinct names %q and %q", c.a, c.b, a, b)
			}
		})
	}
}

func TestRuleSaysWhatIsAccepted(t *testing.T) {
	for _, want := range []string{"1 to 100", "letters, digits, spaces and . _ @ + : -", "one script", "no space at its end"} {
		if !strings.Contains(Rule, want) {
			t.Errorf("Rule lacks %q: %s", want, Rule)
		}
	}
}
