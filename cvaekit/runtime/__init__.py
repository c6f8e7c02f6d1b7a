"""Where and how a command runs: the device, OpenMP threads (set before torch loads, so this
package imports no torch at its top), processes, interrupts, ports and optional packages."""
