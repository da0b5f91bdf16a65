/** What a page shows instead of zeros when the gateway asks for a key. */
export function SignIn() {
  return (
    <div class="sign-in" role="alert" data-testid="sign-in">
      <strong>Sign in to see this gateway.</strong> It asks for an API key: enter one of its keys (
      <code>GATEWAY_API_KEYS</code> or, to see every caller's jobs, <code>GATEWAY_ADMIN_KEYS</code>) in the box at the
      top and choose “Use key”. Nothing is polled until then.
    </div>
  );
}
