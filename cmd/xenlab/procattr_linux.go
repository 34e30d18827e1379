package main

import "syscall"

// procAttr puts a process of the lab in a process group of its own, so
// that a Ctrl-C at the terminal reaches xenlab alone (which stops the
// processes in order), and has it sent SIGTERM should xenlab die first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
