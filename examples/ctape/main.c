/* examples/ctape/main.c — `ctape COMMAND ...`: train, resume, eval, plot, list. */
#include "command.h"

#include <string.h>

static const char *const usage =
    "usage: ctape COMMAND [flags]   (ctape COMMAND --help for each)\n"
    "  train    train a model from the zoo on a dataset; writes logs, checkpoints, pictures, summary.md\n"
    "  resume   continue an interrupted run from its checkpoint (ctape resume DIR)\n"
    "  eval     evaluate a run's model on its test set (ctape eval DIR)\n"
    "  plot     overlay the curves of several runs (ctape plot DIR DIR ...)\n"
    "  arena    race losses over seeds and data conditions: runs.csv and a table with 95% intervals\n"
    "  list     the names a spec can use: ctape list models|losses|optimizers|schedules|datasets\n"
    "example:\n"
    "  ctape train --model lenet5 --data fashion-mnist --epochs 5 --out runs/lenet5";

static int command_list(int argc, char **argv) {
    static const char *const what[] = {"models", "losses", "optimizers", "schedules", "datasets"};
    const char *pos[1];
    int n_pos;
    opt_positional given = {pos, 1, 0};
    if (!command_flags("list", argc, argv, NULL, 0, "usage: ctape list models|losses|optimizers|schedules|datasets", &given))
        return 2;
    n_pos = given.n;
    const char *which = n_pos ? pos[0] : "";
    if (!strcmp(which, "models")) ct_model_list(stdout);
    else if (!strcmp(which, "losses")) ct_loss_list(stdout);
    else if (!strcmp(which, "optimizers")) ct_optim_list(stdout);
    else if (!strcmp(which, "schedules")) ct_schedule_list(stdout);
    else if (!strcmp(which, "datasets")) datasets_list(stdout);
    else {
        const char *near = ct_spec_nearest(which, what, 5);
        fprintf(stderr, "ctape list: give models, losses, optimizers, schedules or datasets%s%s%s\n",
                near ? " (did you mean " : "", near ? near : "", near ? "?)" : "");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    static const char *const commands[] = {"train", "resume", "eval", "plot", "list", "arena"};
    static int (*const run[])(int, char **) = {command_train, command_resume, command_eval,
                                               command_plot,  command_list,   command_arena};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        printf("%s\n", usage);
        return argc < 2 ? 2 : 0;
    }
    for (int k = 0; k < 6; k++)
        if (!strcmp(argv[1], commands[k])) return run[k](argc, argv);
    const char *near = ct_spec_nearest(argv[1], commands, 6);
    fprintf(stderr, "ctape: unknown command '%s'%s%s%s; ctape --help lists them\n", argv[1], near ? " (did you mean " : "",
            near ? near : "", near ? "?)" : "");
    return 2;
}
