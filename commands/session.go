package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/metrics"
)

// Outcome is how a command ended, ordered by severity so that a batch's exit
// status is the worst outcome of its commands.
type Outcome int

// Outcomes, least severe first.
const (
	OK          Outcome = iota // every command succeeded
	Failed                     // a command ran and failed
	ParseFailed                // a command could not be parsed
	Denied                     // authentication or permission refused
)

// ExitStatus is the SSH exit status for an outcome (docs/command-language.md): 0 success, 1 a
// command failed, 2 a command could not be parsed, 3 authentication or
// permission.
func (o Outcome) ExitStatus() int { return int(o) }

// Options describe the session being opened.
type Options struct {
	// Interactive sessions (a PTY) default to Table output and to the output
	// mode and Json version the user chose last time; exec and batch
	// sessions always start in Verbose and Json version 1, so that scripts
	// get what they parse whatever the user chose interactively.
	Interactive bool
	// RememberSettings, in sessions at the OVM> prompt, makes "set
	// outputMode=" and "set jsonVersion=" those of the user's later
	// interactive sessions too. In exec and batch sessions (a command with ssh -t
	// included) every setting lasts for the session only: a script's
	// "set outputMode=Json" must not change what the operator sees at
	// the prompt. ("set lineEditor=", a choice for the next interactive
	// sessions only, is remembered from any session.)
	RememberSettings bool
	Log              *slog.Logger
	// Terminal, in interactive sessions, lets top and console take the
	// screen and keyboard.
	Terminal Terminal
	// Progress, in interactive sessions, draws a running job's progress in
	// place ("" clears it); it never reaches exec or batch output.
	Progress func(line string)
}

// Session runs the commands of one SSH session and prints their output.
type Session struct {
	reg      *Registry
	backend  *backend.Manager
	actor    backend.Actor
	out      io.Writer
	log      *slog.Logger
	now      func() time.Time
	started  time.Time
	opts     Options
	exited   bool
	settings Settings
	// running is the audit record of the command being run, between its
	// start and its report; nil otherwise.
	running *backend.CommandAudit
}

// NewSession starts a command session for actor writing to out.
func NewSession(ctx context.Context, reg *Registry, b *backend.Manager, actor backend.Actor, out io.Writer, opts Options) *Session {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Session{reg: reg, backend: b, actor: actor, out: out, log: opts.Log, now: time.Now, opts: opts, settings: defaultSettings}
	s.started = s.now()
	if opts.Interactive {
		s.settings.OutputMode = ModeTable
		if m, ok := b.UserSetting(ctx, actor.User, settingOutputMode); ok {
			s.settings.OutputMode = m
		}
		if v, ok := b.UserSetting(ctx, actor.User, settingJSONVersion); ok {
			if n, ok := jsonVersionOf(v); ok {
				s.settings.JSONVersion = n
			}
		}
	}
	return s
}

// Exited reports whether the session has ended: exit, or a failure with
// stopOnError=Yes.
func (s *Session) Exited() bool { return s.exited }

// Settings returns the session's current settings.
func (s *Session) Settings() Settings { return s.settings }

// RejectLine reports a line that is refused whole (say, too long to read)
// without running any of it.
func (s *Session) RejectLine(shown, msg string) Outcome {
	rep := &Report{Command: maskSecrets(shown, s.reg), Time: s.now(), Code: CodeSyntax, Msg: msg}
	rep.began = rep.Time
	s.count(nil, rep)
	s.write(rep)
	if s.settings.StopOnError {
		s.exited = true
	}
	return ParseFailed
}

// RunLine runs every command of a line (';'-joined) in order and returns the
// worst outcome. A piece that does not parse is reported and the others
// still run (unless stopOnError=Yes).
func (s *Session) RunLine(ctx context.Context, line string) Outcome {
	worst := OK
	secretSeen := false
	for _, p := range s.reg.ParseLine(line) {
		if s.exited {
			break
		}
		// A piece after one that held a password may be the rest of that
		// password (password=ab;cd): if it fails to parse, show none of it.
		if p.Err != nil && secretSeen {
			p.Text, p.Err = "****", &ParseError{Code: p.Err.Code, Msg: redactedMessage(p.Err.Code)}
		}
		secretSeen = secretSeen || MentionsSecret(p.Text)
		o := s.run(ctx, p)
		if o > worst {
			worst = o
		}
		if o != OK && s.settings.StopOnError {
			s.exited = true
		}
	}
	return worst
}

func (s *Session) run(ctx context.Context, p Parsed) Outcome {
	shown := maskSecrets(p.Text, s.reg)
	if p.Err != nil && MentionsSecret(p.Text) {
		// The error could quote part of a password: say what is wrong in
		// general terms and echo only the first word.
		shown = firstWord(p.Text) + " ..."
		p.Err = &ParseError{Code: p.Err.Code, Msg: redactedMessage(p.Err.Code) + s.acceptedHint(p.Text)}
	}
	rep := &Report{Command: shown, Time: s.now()}
	rep.began = rep.Time
	defer func() { s.count(p.Cmd, rep) }()
	if p.Err != nil {
		rep.Code, rep.Msg = p.Err.Code, p.Err.Msg
		s.write(rep)
		return ParseFailed
	}
	cmd := p.Cmd
	// The user's role may have changed, or the user been deleted, since the
	// session logged in: every command runs with the role the user has now.
	if s.backend != nil {
		cur, err := s.backend.CurrentActor(ctx, s.actor)
		if err != nil {
			rep.Code, rep.Msg = describeError(err)
			rep.cause = err
			s.write(rep)
			s.exited = true
			return Denied
		}
		s.actor = cur
	}
	if cmd.Help {
		rep.Result = &Result{Text: helpFor(cmd)}
		s.write(rep)
		return OK
	}
	if s.backend != nil {
		// The command's changes are committed with its audit record.
		s.running = s.backend.BeginAudit(s.actor, shown)
		defer func() { s.running = nil }()
	}
	// A streamed listing reads its rows after the handler returned, within
	// the same commandTimeout, counted from now (writeStreamed).
	deadline, timeout := time.Now().Add(s.settings.CommandTimeout), s.settings.CommandTimeout
	res, err, finished := s.execute(ctx, cmd)
	rep.Time = s.now()
	rep.Result = res
	if !finished {
		rep.Result = nil
		rep.Code = CodeTimeout
		rep.Msg = fmt.Sprintf("the command did not finish within commandTimeout=%d seconds; it goes on in the background (see its objects with show)",
			int(s.settings.CommandTimeout/time.Second))
		if ctx.Err() != nil {
			rep.Msg = "interrupted; the command goes on in the background (list Job shows it)"
		}
		s.write(rep)
		return Failed
	}
	if err != nil && backend.KindOf(err) == backend.KindStillRunning && s.settings.CommandMode == "Asynchronous" {
		// Asynchronous mode: the job started; its id is the answer.
		rep.Result = &Result{Fields: []Field{strField("Job Id", "jobId", backend.JobIDOf(err))}}
		err = nil
	}
	if err != nil {
		rep.Code, rep.Msg = describeError(err)
		var me *multiError
		if errors.As(err, &me) {
			rep.Msg = me.message()
		}
		rep.cause = err
		s.write(rep)
		return rep.Code.outcome()
	}
	if res != nil && res.Exit {
		s.exited = true
		return OK
	}
	if res != nil && res.Stream != nil {
		rctx, cancel := context.WithDeadlineCause(ctx, deadline, failf(CodeTimeout,
			"the listing did not finish within commandTimeout=%d seconds: the rows above are only its first ones", int(timeout/time.Second)))
		defer cancel()
		return s.writeStreamed(rctx, rep)
	}
	s.write(rep)
	return OK
}

// writeStreamed prints a report whose rows are streamed (writeStream),
// then logs and audits it: its outcome is known only once every row has
// been read, and a listing that failed midway is a failed command. ctx
// bounds the reading of the rows (the command's deadline, the session's
// interruption), not the client's taking of them: once they are read, the
// spill holds what the client has not taken yet, and no transaction is
// open while the client takes it.
func (s *Session) writeStreamed(ctx context.Context, rep *Report) Outcome {
	_, werr := writeStream(ctx, s.out, s.format(), rep)
	if werr != nil {
		s.log.Debug("session output lost", "err", werr)
	}
	s.logCommand(rep)
	result := StatusSuccess
	if rep.Failed() {
		result = string(rep.Code)
	}
	if s.running != nil {
		s.backend.EndAudit(s.running, result)
	}
	if rep.Failed() {
		return rep.Code.outcome()
	}
	return OK
}

// count records a command that ended as rep says in the metrics, under
// its verb and type as the registry spells them: cmd is nil for a line the
// parser refused, which counts with both empty (what was typed is never a
// label).
func (s *Session) count(cmd *Command, rep *Report) {
	if s.backend == nil {
		return
	}
	mx := s.backend.Metrics()
	if mx == nil {
		return
	}
	verb, typ, status := "", "", metrics.StatusOK
	if cmd != nil && cmd.Spec != nil {
		verb, typ = cmd.Spec.Verb, cmd.Spec.Type
	}
	if rep.Failed() {
		status = string(rep.Code)
	}
	mx.CommandDone(verb, typ, status)
}

// write audits a command's report, logs it and prints it in the session's
// format: the result goes into the audit record of the command being run,
// or, for one refused before it ran, into a record of its own.
func (s *Session) write(rep *Report) {
	result := StatusSuccess
	if rep.Failed() {
		result = string(rep.Code)
	}
	s.logCommand(rep)
	switch {
	case s.running != nil:
		s.backend.EndAudit(s.running, result)
	case s.backend != nil:
		s.backend.Audit(context.Background(), s.actor, rep.Command, result)
	}
	if err := writeReport(s.out, s.format(), rep); err != nil {
		s.log.Debug("session output lost", "err", err)
	}
}

// logCommand writes the one log line of a command the session reports
// (what the audit records, with what an operator looks for in the log):
// who ran it from where, the command with its secrets masked, how it ended
// ("ok" or its code), how long it took and, for a failure, its cause, which
// the user sees only as the code's message when the fault was the
// manager's. The session's logger carries the kind of session (exec,
// batch, interactive).
func (s *Session) logCommand(rep *Report) {
	level, status, cause := slog.LevelInfo, "ok", ""
	if rep.Failed() {
		status, cause = string(rep.Code), rep.Msg
		if rep.cause != nil {
			cause = rep.cause.Error()
		}
		switch rep.Code {
		case CodeInternal:
			level = slog.LevelError
		case CodeTimeout:
			level = slog.LevelWarn
		}
	}
	attrs := []slog.Attr{
		slog.String("user", s.actor.User),
		slog.String("remote", s.actor.Remote),
		slog.String("command", rep.Command),
		slog.String("status", status),
		slog.Float64("duration_ms", float64(s.now().Sub(rep.began).Microseconds())/1000),
	}
	if cause != "" {
		attrs = append(attrs, slog.String("error", cause))
	}
	s.log.LogAttrs(context.Background(), level, "command", attrs...)
}
