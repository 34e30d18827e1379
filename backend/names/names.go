// Package names holds the one rule every object name follows (VMs, servers,
// pools, repositories, disks, ISOs, networks, VNICs, tags, users, SSH keys),
// applied when a name is given: at create, rename and edit. Names need not be
// unique, so that two objects may share one (as in Oracle VM); the rule is
// there so that two names that look the same are the same name: lookups by
// name then find both and say so, instead of finding the wrong one.
//
// A name is taken in Unicode NFC, the form it is stored in, so that "é"
// typed as one character or as "e" and a combining accent is one name. It is
// refused, with the reason, when it
//   - is empty or longer than MaxRunes characters;
//   - starts with anything but a letter or digit, ends with a space, or has
//     two spaces in a row (names that differ only there look alike);
//   - holds a character other than letters, digits, the space (U+0020) and
//     . _ @ + : - : control characters, invisible formatting characters
//     (zero-width spaces and joiners, bidirectional controls), other spaces
//     (no-break, ideographic...), combining marks that form no letter with
//     the one before them, symbols and other punctuation;
//   - holds a compatibility character, which NFKC would turn into a plain one
//     it looks like (fullwidth "ｗｅｂ", ligatures, superscripts, the Kelvin
//     sign): the plain one is to be written instead;
//   - mixes scripts ("vm-а" with a Cyrillic "а"); Latin may be mixed with
//     Chinese, Japanese or Korean (UTS #39, Highly Restrictive);
//   - is written in Cyrillic or Greek letters that each pass for a Latin one
//     ("ԝеb" in Cyrillic, which reads as "web"), or holds one of the Latin
//     phonetic letters that pass for a plain one ("ɑ", "ɡ", small capitals):
//     the lookalikes of the Unicode confusables data (UTS #39) that fall on
//     ASCII letters and digits.
//
// Case is kept and names compare case-sensitively, as lookups by name always
// have: "Web" and "web" look different and are different names. The
// confusables that stay inside ASCII ("rn" and "m", "l", "I" and "1") are not
// refused: they are how ordinary names are spelt.
package names

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxRunes bounds a name, in characters (after NFC).
const MaxRunes = 100

// Rule says what a name may be, in one sentence, for messages and the
// reference.
const Rule = "a name is 1 to 100 letters, digits, spaces and . _ @ + : -, starting with a letter or digit, " +
	"with no space at its end nor two in a row, in one script (Latin may go with Chinese, Japanese or Korean) " +
	"and without compatibility forms (fullwidth letters) or letters that pass for Latin ones"

// Error is why a name was refused: Reason says what is wrong with it.
type Error struct{ Reason string }

func (e *Error) Error() string { return e.Reason }

func refuse(format string, args ...any) (string, error) {
	return "", &Error{Reason: fmt.Sprintf(format, args...)}
}

// Normalize returns s in the form names are stored and looked up in (NFC),
// without checking it.
func Normalize(s string) string { return norm.NFC.String(s) }

// Check returns name in the form it is stored in (NFC), or an *Error saying
// why it is refused.
func Check(name string) (string, error) {
	if !utf8.ValidString(name) {
		return refuse("it is not valid UTF-8")
	}
	n := Normalize(name)
	runes := []rune(n)
	switch {
	case len(runes) == 0:
		return refuse("it is empty")
	case len(runes) > MaxRunes:
		return refuse("it is %d characters long", len(runes))
	}
	for i, r := range runes {
		if err := checkRune(runes, i); err != nil {
			return "", err
		}
		if i == 0 && !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			return refuse("it starts with %s; a name starts with a letter or digit", describe(r))
		}
	}
	if err := checkScripts(runes); err != nil {
		return "", err
	}
	return n, nil
}

// checkRune checks the character at i of a name in NFC.
func checkRune(runes []rune, i int) error {
	r := runes[i]
	switch {
	case r == ' ':
		switch {
		case i == 0:
			return &Error{Reason: "it starts with a space"}
		case i == len(runes)-1:
			return &Error{Reason: "it ends with a space"}
		case runes[i-1] == ' ':
			return &Error{Reason: "it has two spaces in a row"}
		}
		return nil
	case r < utf8.RuneSelf && strings.ContainsRune("._@+:-", r):
		return nil
	case unicode.IsControl(r):
		return &Error{Reason: fmt.Sprintf("it holds the control character U+%04X", r)}
	case invisible(r):
		return &Error{Reason: fmt.Sprintf("it holds U+%04X, an invisible formatting character (such as a zero-width space or a bidirectional control)", r)}
	case unicode.Is(unicode.Zs, r) || unicode.IsSpace(r) || unicode.In(r, unicode.Zl, unicode.Zp):
		return &Error{Reason: fmt.Sprintf("it holds U+%04X, a space other than the ordinary one (U+0020)", r)}
	case unicode.IsMark(r):
		return &Error{Reason: fmt.Sprintf("it holds U+%04X, a combining mark that forms no letter with the character before it", r)}
	case unicode.IsLetter(r) || unicode.IsNumber(r):
		if k := norm.NFKC.String(string(r)); k != string(r) {
			return &Error{Reason: fmt.Sprintf("it holds %s, a compatibility form of %q%s", describe(r), k, writeInstead(k))}
		}
		if l, ok := latinLookalikes[r]; ok {
			return &Error{Reason: fmt.Sprintf("it holds %s, a phonetic letter that passes for %q", describe(r), l)}
		}
		return nil
	}
	return &Error{Reason: fmt.Sprintf("it holds %s, which names may not hold", describe(r))}
}

// invisible reports whether r is drawn as nothing: format characters
// (zero-width space, joiners, bidirectional controls, the soft hyphen),
// variation selectors and the other default-ignorable code points, Hangul
// fillers among them, which are letters.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// writeInstead tells to write plain in place of a compatibility form when
// names may hold it.
func writeInstead(plain string) string {
	for _, r := range plain {
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			return ""
		}
	}
	return fmt.Sprintf(": write %q instead", plain)
}

// describe names a character for a message: itself, quoted, and its code
// point.
func describe(r rune) string { return fmt.Sprintf("%q (U+%04X)", r, r) }

// scriptOf returns the Unicode script of a letter or digit, "" for the
// characters every script uses (ASCII digits, the punctuation names allow,
// the Japanese prolonged sound mark).
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if unicode.IsLetter(r) {
			return "Latin"
		}
		return ""
	}
	for name, table := range unicode.Scripts {
		if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

// mixable are the sets of scripts a name may mix (UTS #39, Highly
// Restrictive): Latin with those of Japanese, Chinese or Korean writing.
var mixable = []map[string]bool{
	{"Latin": true, "Han": true, "Hiragana": true, "Katakana": true},
	{"Latin": true, "Han": true, "Bopomofo": true},
	{"Latin": true, "Han": true, "Hangul": true},
}

// checkScripts refuses a name that mixes scripts, or one written in
// Cyrillic or Greek letters that all pass for Latin ones.
func checkScripts(runes []rune) error {
	var first string // the name's first script
	seen := map[string]bool{}
	for _, r := range runes {
		s := scriptOf(r)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		if first == "" {
			first = s
			continue
		}
		if !anyHolds(mixable, seen) {
			return &Error{Reason: fmt.Sprintf("it mixes %s and %s letters (%s is %s); write a name in one script (Latin may go with Chinese, Japanese or Korean)",
				first, s, describe(r), s)}
		}
	}
	if len(seen) != 1 || (first != "Cyrillic" && first != "Greek") {
		return nil
	}
	var looks strings.Builder
	for _, r := range runes {
		if scriptOf(r) == "" {
			looks.WriteRune(r)
			continue
		}
		l, ok := foreignLookalikes[r]
		if !ok {
			return nil // a letter that looks like no Latin one
		}
		looks.WriteString(l)
	}
	return &Error{Reason: fmt.Sprintf("its %s letters all pass for Latin ones (it reads as %q); write it in Latin letters, or with a letter that does not pass for one",
		first, looks.String())}
}

// anyHolds reports whether one of the sets holds every script of seen.
func anyHolds(sets []map[string]bool, seen map[string]bool) bool {
	for _, set := range sets {
		all := true
		for s := range seen {
			all = all && set[s]
		}
		if all {
			return true
		}
	}
	return false
}

// foreignLookalikes are the Cyrillic and Greek letters that pass for Latin
// letters or digits, and what they pass for: the entries of the Unicode
// confusables data (UTS #39, Unicode 14) that map them onto ASCII.
var foreignLookalikes = map[rune]string{
	0x037F: "J",  // Ϳ greek capital letter yot
	0x0391: "A",  // Α greek capital letter alpha
	0x0392: "B",  // Β greek capital letter beta
	0x0395: "E",  // Ε greek capital letter epsilon
	0x0396: "Z",  // Ζ greek capital letter zeta
	0x0397: "H",  // Η greek capital letter eta
	0x0399: "l",  // Ι greek capital letter iota
	0x039A: "K",  // Κ greek capital letter kappa
	0x039C: "M",  // Μ greek capital letter mu
	0x039D: "N",  // Ν greek capital letter nu
	0x039F: "O",  // Ο greek capital letter omicron
	0x03A1: "P",  // Ρ greek capital letter rho
	0x03A4: "T",  // Τ greek capital letter tau
	0x03A5: "Y",  // Υ greek capital letter upsilon
	0x03A7: "X",  // Χ greek capital letter chi
	0x03B1: "a",  // α greek small letter alpha
	0x03B3: "y",  // γ greek small letter gamma
	0x03B9: "i",  // ι greek small letter iota
	0x03BD: "v",  // ν greek small letter nu
	0x03BF: "o",  // ο greek small letter omicron
	0x03C1: "p",  // ρ greek small letter rho
	0x03C3: "o",  // σ greek small letter sigma
	0x03C5: "u",  // υ greek small letter upsilon
	0x03DC: "F",  // Ϝ greek letter digamma
	0x03F3: "j",  // ϳ greek letter yot
	0x03FA: "M",  // Ϻ greek capital letter san
	0x0405: "S",  // Ѕ cyrillic capital letter dze
	0x0406: "l",  // І cyrillic capital letter byelorussian-ukrainian i
	0x0408: "J",  // Ј cyrillic capital letter je
	0x0410: "A",  // А cyrillic capital letter a
	0x0412: "B",  // В cyrillic capital letter ve
	0x0415: "E",  // Е cyrillic capital letter ie
	0x0417: "3",  // З cyrillic capital letter ze
	0x041A: "K",  // К cyrillic capital letter ka
	0x041C: "M",  // М cyrillic capital letter em
	0x041D: "H",  // Н cyrillic capital letter en
	0x041E: "O",  // О cyrillic capital letter o
	0x0420: "P",  // Р cyrillic capital letter er
	0x0421: "C",  // С cyrillic capital letter es
	0x0422: "T",  // Т cyrillic capital letter te
	0x0423: "Y",  // У cyrillic capital letter u
	0x0425: "X",  // Х cyrillic capital letter ha
	0x042B: "bl", // Ы cyrillic capital letter yeru
	0x042C: "b",  // Ь cyrillic capital letter soft sign
	0x042E: "lO", // Ю cyrillic capital letter yu
	0x0430: "a",  // а cyrillic small letter a
	0x0431: "6",  // б cyrillic small letter be
	0x0433: "r",  // г cyrillic small letter ghe
	0x0435: "e",  // е cyrillic small letter ie
	0x043E: "o",  // о cyrillic small letter o
	0x0440: "p",  // р cyrillic small letter er
	0x0441: "c",  // с cyrillic small letter es
	0x0443: "y",  // у cyrillic small letter u
	0x0445: "x",  // х cyrillic small letter ha
	0x0455: "s",  // ѕ cyrillic small letter dze
	0x0456: "i",  // і cyrillic small letter byelorussian-ukrainian i
	0x0458: "j",  // ј cyrillic small letter je
	0x0461: "w",  // ѡ cyrillic small letter omega
	0x0474: "V",  // Ѵ cyrillic capital letter izhitsa
	0x0475: "v",  // ѵ cyrillic small letter izhitsa
	0x04AE: "Y",  // Ү cyrillic capital letter straight u
	0x04AF: "y",  // ү cyrillic small letter straight u
	0x04BB: "h",  // һ cyrillic small letter shha
	0x04BD: "e",  // ҽ cyrillic small letter abkhasian che
	0x04C0: "l",  // Ӏ cyrillic letter palochka
	0x04CF: "i",  // ӏ cyrillic small letter palochka
	0x04D4: "AE", // Ӕ cyrillic capital ligature a ie
	0x04D5: "ae", // ӕ cyrillic small ligature a ie
	0x04E0: "3",  // Ӡ cyrillic capital letter abkhasian dze
	0x0501: "d",  // ԁ cyrillic small letter komi de
	0x050C: "G",  // Ԍ cyrillic capital letter komi sje
	0x051B: "q",  // ԛ cyrillic small letter qa
	0x051C: "W",  // Ԝ cyrillic capital letter we
	0x051D: "w",  // ԝ cyrillic small letter we
}

// latinLookalikes are the Latin phonetic letters (IPA, small capitals,
// clicks, tone letters) that pass for plain ASCII letters, digits or
// punctuation, from the same data. Letters of living orthographies that the
// data also lists (Turkish ı, æ, œ, the hooked letters of African
// alphabets, Vietnamese ơ) are not among them: they look different enough.
var latinLookalikes = map[rune]string{
	0x0184: "b",  // Ƅ latin capital letter tone six
	0x018D: "g",  // ƍ latin small letter turned delta
	0x0196: "l",  // Ɩ latin capital letter iota
	0x01A6: "R",  // Ʀ latin letter yr
	0x01A7: "2",  // Ƨ latin capital letter tone two
	0x01BC: "5",  // Ƽ latin capital letter tone five
	0x01BD: "s",  // ƽ latin small letter tone five
	0x01C0: "l",  // ǀ latin letter dental click
	0x01C1: "ll", // ǁ latin letter lateral click
	0x01C3: "!",  // ǃ latin letter retroflex click
	0x0222: "8",  // Ȣ latin capital letter ou
	0x0223: "8",  // ȣ latin small letter ou
	0x0241: "?",  // Ɂ latin capital letter glottal stop
	0x0251: "a",  // ɑ latin small letter alpha
	0x0261: "g",  // ɡ latin small letter script g
	0x0269: "i",  // ɩ latin small letter iota
	0x026A: "i",  // ɪ latin letter small capital i
	0x026F: "w",  // ɯ latin small letter turned m
	0x028F: "y",  // ʏ latin letter small capital y
	0x0294: "?",  // ʔ latin letter glottal stop
	0x02A3: "dz", // ʣ latin small letter dz digraph
	0x02A6: "ts", // ʦ latin small letter ts digraph
	0x02AA: "ls", // ʪ latin small letter ls digraph
	0x02AB: "lz", // ʫ latin small letter lz digraph
	0x1D04: "c",  // ᴄ latin letter small capital c
	0x1D0F: "o",  // ᴏ latin letter small capital o
	0x1D11: "o",  // ᴑ latin small letter sideways o
	0x1D1C: "u",  // ᴜ latin letter small capital u
	0x1D20: "v",  // ᴠ latin letter small capital v
	0x1D21: "w",  // ᴡ latin letter small capital w
	0x1D22: "z",  // ᴢ latin letter small capital z
	0x1D6B: "ue", // ᵫ latin small letter ue
	0x1D83: "g",  // ᶃ latin small letter g with palatal hook
	0x1D8C: "y",  // ᶌ latin small letter v with palatal hook
	0x1E9D: "f",  // ẝ latin small letter long s with high stroke
	0x1EFF: "y",  // ỿ latin small letter y with loop
}
