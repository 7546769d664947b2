package cli

import (
	"github.com/spf13/cobra"
)

func newCompletionCmd(io IO, root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long:  "Print a script that makes your shell complete herd's commands and flags.",
		Example: `  # bash, for this session:
  source <(herd completion bash)
  # zsh, for good:
  herd completion zsh > "${fpath[1]}/_herd"
  # fish:
  herd completion fish > ~/.config/fish/completions/herd.fish`,
		Args:      exactArgs(1, "a shell name: bash, zsh, fish or powershell"),
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(io.Out, true)
			case "zsh":
				return root.GenZshCompletion(io.Out)
			case "fish":
				return root.GenFishCompletion(io.Out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(io.Out)
			}
			return usageErrorf("unknown shell %q: use bash, zsh, fish or powershell", args[0])
		},
	}
}
