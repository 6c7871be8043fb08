# shellcheck shell=bash
# Sourced by the launchers (run_cw20.sh, run_interactive.sh, run_interactive_ablation.sh,
# run_on_HPC.sh), which set PROG (their name, for messages) first:
#
#   die MESSAGE                     one line "$PROG: error: MESSAGE" on stderr, exit status 2
#   check_int NAME VALUE MIN [MAX]  dies unless VALUE is a decimal integer in [MIN, MAX]
#   check_int_list NAME "V1 V2" MIN [MAX]   the same for each of space-separated values
#   check_agent_list NAME "V1 V2"   agent indices of the agent table (0-7)
#   container_runtime SIF           apptainer, singularity or nothing ("none" or neither on PATH:
#                                   run in the local .venv)
#
# and runs python children so that every stop is clean:
#
#   start_group CMD...   CMD in the background in a process group of its own (PID in CHILD_PID)
#   wait_group PID       its exit status in CHILD_STATUS, once the whole group has ended
#   trap_stop_signals    SIGTERM, SIGINT and SIGUSR1 (SIGHUP as SIGTERM) go on to every group
#                        started and not yet waited for; STOP_SIGNAL names the one received;
#                        groups still running when the launcher exits get SIGTERM and are waited for
#
# A child in its own process group gets Ctrl-C only through the launcher (the terminal signals the
# launcher's group), and a signal to the group reaches the python run behind every exec layer
# (./run.sh, a container's bash -c) at once. Python runs checkpoint and exit 75 on these signals
# (palr.signals); the launcher waits for them and then exits 75 itself.

container_runtime() {  # SIF
    if [ "$1" = "none" ]; then
        return 0
    fi
    if command -v apptainer >/dev/null 2>&1; then
        echo "apptainer"
    elif command -v singularity >/dev/null 2>&1; then
        echo "singularity"
    fi
}

# the largest integer a knob may hold: far below where bash arithmetic (64 bits) overflows
INT_MAX=2147483647

die() {
    echo "$PROG: error: $*" >&2
    exit 2
}

# is_decimal VALUE: digits only, no sign, no leading zero, at most as many digits as INT_MAX, so
# that [ -gt ] and $(( )) never see a number they cannot hold
is_decimal() {
    [[ "$1" =~ ^(0|[1-9][0-9]*)$ ]] && [ "${#1}" -le "${#INT_MAX}" ]
}

check_int() {  # NAME VALUE MIN [MAX]
    local max="${4:-$INT_MAX}"
    if [[ "$2" =~ ^0[0-9]+$ ]]; then
        die "$1 must be an integer >= $3 written without leading zeros, got '$2'"
    fi
    if ! [[ "$2" =~ ^[0-9]+$ ]] || { is_decimal "$2" && [ "$2" -lt "$3" ]; }; then
        die "$1 must be an integer >= $3, got '$2'"
    fi
    if ! is_decimal "$2" || [ "$2" -gt "$max" ]; then
        die "$1 must be an integer from $3 to $max, got '$2'"
    fi
}

check_int_list() {  # NAME "VALUES" MIN [MAX [WHY]]: WHY replaces "is out of range; valid: MIN-MAX"
    local v values max="${4:-$INT_MAX}"
    read -r -a values <<< "$2"
    [ "${#values[@]}" -gt 0 ] || die "$1 is empty; give space-separated integers, e.g. $1=\"0 1 2\""
    for v in "${values[@]}"; do
        if ! is_decimal "$v"; then
            die "$1 must hold space-separated integers from $3 to $max without signs or leading zeros, got '$v' in \"$2\""
        fi
        if [ "$v" -lt "$3" ] || [ "$v" -gt "$max" ]; then
            die "$1 value $v ${5:-is out of range; valid: $3-$max}"
        fi
    done
}

check_agent_list() {  # NAME "VALUES"
    check_int_list "$1" "$2" 0 7 \
        "is not an agent index; valid: 0-7 (0=SAC-FixedLR ... 4=PALR-SAC ... 7=SAC-ReDo; the README's agent table)"
}

# --- children in process groups of their own; stop signals passed on ----------------------------
# shellcheck disable=SC2034  # STOP_SIGNAL, CHILD_PID, CHILD_STATUS are read by the launchers
STOP_SIGNAL=""          # TERM, INT, USR1 or HUP once the launcher was asked to stop
CHILD_GROUPS=()         # process groups (their leaders' PIDs) started and not yet waited for
CHILD_USR1=USR1         # what a child gets for SIGUSR1 (TERM for torchrun: no SIGUSR1 handler)
_TRAPPED=0              # a trap ran: the wait it interrupted must be repeated
CHILD_PID=""            # the PID (= process group) start_group started last
CHILD_STATUS=0          # the exit status wait_group found

start_group() {  # CMD...
    set -m  # job control: the background job gets a process group of its own
    "$@" &
    CHILD_PID=$!
    set +m
    CHILD_GROUPS+=("$CHILD_PID")
}

# on_stop_signal SIG: remember it and send it (HUP as TERM, USR1 as CHILD_USR1) to every group
on_stop_signal() {
    local to="$1" pid
    case "$1" in
        HUP) to=TERM ;;
        USR1) to="$CHILD_USR1" ;;
    esac
    STOP_SIGNAL="${STOP_SIGNAL:-$1}"
    _TRAPPED=1
    for pid in "${CHILD_GROUPS[@]}"; do
        kill -s "$to" -- "-$pid" 2>/dev/null || true
    done
    echo "[$PROG] got SIG$1: asking the runs to save their checkpoints and stop" >&2 || true
}

# stop_children_on_exit: a launcher that ends with children still running (an error under
# set -e) stops them first and waits for them
stop_children_on_exit() {
    local pid
    for pid in "${CHILD_GROUPS[@]}"; do
        kill -s TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${CHILD_GROUPS[@]}"; do
        wait_group "$pid"
    done
}

trap_stop_signals() {
    trap 'on_stop_signal TERM' TERM
    trap 'on_stop_signal INT' INT
    trap 'on_stop_signal USR1' USR1
    trap 'on_stop_signal HUP' HUP
    trap stop_children_on_exit EXIT
}

wait_group() {  # PID
    local pid="$1" ticks=0 g
    while :; do
        _TRAPPED=0
        CHILD_STATUS=0
        # shellcheck disable=SC2034  # read by the launchers
        wait "$pid" || CHILD_STATUS=$?
        # a trap ends `wait` early while the child runs on; bash keeps a reaped child's status,
        # so waiting again is right either way
        [ "$_TRAPPED" = 1 ] || break
    done
    # the rest of its group (a container's helper processes, a run's own workers); after 60 s
    # whatever is left is killed, so that no process outlives the launcher
    while kill -0 -- "-$pid" 2>/dev/null; do
        if [ "$ticks" -eq 600 ]; then
            echo "[$PROG] processes of group $pid outlived its leader by 60 s: killing them" >&2
            kill -s KILL -- "-$pid" 2>/dev/null || true
        fi
        sleep 0.1
        ticks=$((ticks + 1))
    done
    local kept=()
    for g in "${CHILD_GROUPS[@]}"; do
        [ "$g" = "$pid" ] || kept+=("$g")
    done
    CHILD_GROUPS=("${kept[@]}")
}
