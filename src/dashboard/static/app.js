// The dashboard's entry: sign-in, the page for the current path, the header.

import { api, ApiError, clearToken, getToken, setToken, whenUnauthorized } from './api.js'
import { h, replace } from './dom.js'
import { leaderboardPage } from './pages/leaderboard.js'
import { overviewPage } from './pages/overview.js'
import { submissionPage } from './pages/submission.js'
import { submissionsPage } from './pages/submissions.js'
import { workersPage } from './pages/workers.js'

const ROUTES = [
  { pattern: /^\/dashboard\/?$/, nav: 'challenges', page: overviewPage },
  { pattern: /^\/dashboard\/submissions\/?$/, nav: 'submissions', page: submissionsPage },
  { pattern: /^\/dashboard\/submissions\/(\d+)\/?$/, nav: 'submissions', page: submissionPage },
  {
    pattern: /^\/dashboard\/challenges\/([^/]+)\/leaderboard\/?$/,
    nav: 'challenges',
    page: leaderboardPage,
  },
  { pattern: /^\/dashboard\/workers\/?$/, nav: 'workers', page: workersPage },
]

const main = document.getElementById('main')
let stopPage = () => {}

whenUnauthorized(() => {
  clearToken()
  stopPage()
  showSignIn(
    'Your token was refused (revoked, or proctor restarted with other tokens). Paste a valid one.',
  )
})

async function start() {
  if (!getToken()) return showSignIn()
  let me
  try {
    me = await api('/api/whoami')
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return
    return showError(err)
  }
  showWho(me)
  showPage(me)
}

function showPage(me) {
  const path = location.pathname
  const route = ROUTES.find((r) => r.pattern.test(path))
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (route && a.dataset.nav === route.nav) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
  if (!route) {
    document.title = 'Not found · proctor'
    return replace(
      main,
      h('h1', {}, 'Not found'),
      h(
        'p',
        {},
        'There is no dashboard page at this address. ',
        h('a', { href: '/dashboard/' }, 'Go to the challenges.'),
      ),
    )
  }
  const params = route.pattern.exec(path).slice(1).map(decodeURIComponent)
  const controller = new AbortController()
  stopPage = () => controller.abort()
  route.page({
    main,
    params,
    me,
    signal: controller.signal,
    query: new URLSearchParams(location.search),
  })
}

function showWho(me) {
  const who = document.getElementById('who')
  replace(
    who,
    h('span', {}, 'Signed in as ', h('strong', {}, me.name), ` (${me.scope})`),
    h(
      'button',
      {
        type: 'button',
        class: 'button small',
        onclick: () => {
          clearToken()
          stopPage()
          replace(who)
          showSignIn('Signed out.')
        },
      },
      'Sign out',
    ),
  )
}

function showSignIn(notice) {
  document.title = 'Sign in · proctor'
  const error = h('p', { id: 'token-error', class: 'error', role: 'alert', hidden: !notice })
  if (notice) error.textContent = notice
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-help token-error',
  })
  const form = h(
    'form',
    {
      class: 'signin card',
      onsubmit: async (event) => {
        event.preventDefault()
        setToken(input.value.trim())
        try {
          const me = await api('/api/whoami', { checkingToken: true })
          showWho(me)
          showPage(me)
        } catch (err) {
          clearToken()
          error.hidden = false
          error.textContent =
            err instanceof ApiError && err.status === 401 ? 'That token is not valid.' : err.message
          input.focus()
        }
      },
    },
    h('h1', {}, 'Sign in'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h(
      'p',
      { id: 'token-help', class: 'muted' },
      'An operator token from proctor.yaml (api.tokens) or made with POST /api/tokens. ' +
        'It stays in this tab only and is sent to this proctor only.',
    ),
    error,
    h('button', { type: 'submit', class: 'button primary' }, 'Sign in'),
  )
  replace(main, form)
  input.focus()
}

function showError(err) {
  replace(
    main,
    h('h1', {}, 'proctor is not answering'),
    h('p', { class: 'error', role: 'alert' }, err.message),
  )
}

void start()
