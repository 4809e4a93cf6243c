/**
 * `shoal config get [KEY]` and `shoal config set KEY VALUE`: one setting of
 * the repo's config.json by its dotted key (node/repo/config-edit.ts). The
 * daemon reads its config when it starts: a change applies at its next start.
 *
 * @module
 */
import { access } from 'node:fs/promises'
import { getSetting, parseSettingValue, setSetting } from '../../node/repo/config-edit.js'
import { loadConfig, saveConfig } from '../../node/repo/config.js'
import { repoLayout } from '../../node/repo/layout.js'
import { printJson, printLines, type GlobalOptions } from '../output.js'

/** `shoal config get [KEY]`: the whole config, or one setting (`null` under --json when unset). */
export async function configGetCommand (g: GlobalOptions, key?: string): Promise<void> {
  const config = await loadConfig(repoLayout(g.repo).config)
  const value = key === undefined ? config : getSetting(config, key)
  if (g.json) printJson(value ?? null)
  // an object prints as indented JSON, one line per printed line
  else printLines(...(value === undefined ? '(unset)' : typeof value === 'string' ? value : JSON.stringify(value, null, 2)).split('\n'))
}

/** `shoal config set KEY VALUE`: validated, written atomically; a bad value changes nothing. */
export async function configSetCommand (g: GlobalOptions, key: string, text: string): Promise<void> {
  const layout = repoLayout(g.repo)
  const config = setSetting(await loadConfig(layout.config), key, parseSettingValue(text))
  await saveConfig(layout.config, config)
  const value = getSetting(config, key)
  const running = await access(layout.api).then(() => true, () => false)
  if (g.json) printJson({ key, value, restart: running })
  else printLines(`${key} = ${JSON.stringify(value)}${running ? ' (restart the daemon to apply it)' : ''}`)
}
