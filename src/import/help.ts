/** The longer `--help` texts of `import` and `watch`: where recordings go, what metadata they need, an example. */

const DESTINATION = `
Where the recordings go:
  To the Imagicle server named by IMAGICLE_URL (with IMAGICLE_USERNAME and
  IMAGICLE_PASSWORD), converted and split like the gateway does. With no
  IMAGICLE_URL they go to an embedded Imagicle emulator, announced on stderr,
  kept in EMULATOR_DIR: nothing reaches a real server.
  With --gateway URL (and --key, or GATEWAY_KEY) each file is uploaded to that
  running gateway instead and becomes one of its jobs (door import or watch,
  shown by its jobs API and console); the file follows its job.`;

const METADATA = `
Metadata each recording needs (Imagicle's jsondata):
  startDateTime          {start:<format>} in the pattern, e.g. {start:yyyyMMdd-HHmmss}
                         (luxon tokens; without an offset it is read in --timezone)
  direction              {direction:in=1,out=2} (1 incoming, 2 outgoing; no map: the digit)
  localParty.phoneNumber {local}
  localParty.username    {localName}, or --defaults '{"localParty":{"username":"…"}}'
  optional: remoteParty.phoneNumber {remote}, remoteParty.username {remoteName},
            pbxCallId {callId}, notes, preserved. {*} matches text that is ignored.
  Sources, strongest first: a manifest row, a sidecar <name>.json beside the
  file (the jsondata itself), the file name through --pattern, --defaults.
  A file whose metadata is incomplete is reported "invalid" and not sent.`;

export const IMPORT_HELP = `${DESTINATION}
${METADATA}

Example:
  A folder archive/2024/05/20240502-101502_in_202_5551232_c2.opus, no sidecars:

    imagicle-gateway import archive \\
      --pattern '{start:yyyy}/{start:MM}/{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}' \\
      --defaults '{"localParty":{"username":"archive"}}' --timezone Europe/Rome \\
      --report report.csv

  sends startDateTime 2024-05-02T08:15:02.000Z (10:15:02 in Rome), direction 1,
  localParty {username "archive", phoneNumber "202"}, remoteParty {phoneNumber
  "5551232"}, pbxCallId "c2". Add --dry-run first to check every file without
  sending. Run the same command again to resume: delivered files are skipped.

Imagicle down or busy (connection errors, 429, 503, 5xx) never fails a file:
it waits with the gateway's backoff (Retry-After honoured) and is sent when
Imagicle returns. After --max-wait, Ctrl-C or a kill it stays pending; the
summary counts the files "waiting for Imagicle", and the same command takes
them again (no --retry-failed: that is for Imagicle's refusals and bad audio).

Exit status: 0 everything delivered or already there, 1 anything failed or
invalid, 2 a usage or configuration error, 75 files left waiting for
Imagicle (nothing failed), 130 interrupted (Ctrl-C).
`;

export const WATCH_HELP = `${DESTINATION}
${METADATA}
  (a watched folder has no manifest.)

  A file is taken once its size and mtime have not changed for
  --stable-seconds, or with --sidecar required once its <name>.json exists.
  Delivered files move to done/<yyyy-mm-dd>/, refused ones to failed/ with
  <name>.error.json; when Imagicle is down or busy a file stays, pending,
  and is tried again (Retry-After honoured).

Example:
    imagicle-gateway watch /mnt/drop --sidecar required \\
      --defaults '{"localParty":{"username":"recorder"}}'

  takes /mnt/drop/call-17.wav once /mnt/drop/call-17.json (its jsondata,
  written last by the recorder) exists.

Output: readable lines on a terminal; JSON log lines (pino) when stdout is not
a terminal, or with --log-format json.
`;
